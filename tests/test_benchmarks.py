"""Benchmark scripts as smoke tests at a tiny size (they are not timed tests). The runs compile and
time whole models, so they are in the slow tier; argument handling is in the fast one."""

import json
import os

import pytest

from benchmarks import harness, vs_torch
from jaxres import cli

TINY = ["--batch", "1", "--frames", "4", "--size", "16", "--reps", "1", "--num-classes", "5"]


@pytest.mark.slow  # compiles and times models
def test_bench_writes_json_markdown_and_plot(tmp_path, capsys):
  out = tmp_path / "results"
  assert (
    cli.main(
      [
        "bench",
        "--models",
        "r3d_tiny",
        "--lowering",
        "auto,native",
        "--matmul-size",
        "128",
        "--out-dir",
        str(out),
        *TINY,
      ]
    )
    == 0
  )
  data = json.loads((out / "bench.json").read_text())
  assert data["meta"]["matmul_peak_gflops"] > 0
  rows = data["results"]
  assert [r["lowering"] for r in rows] == ["auto", "native"]
  for r in rows:
    assert r["model"] == "r3d_tiny" and r["shape"] == [1, 4, 16, 16, 3]
    for key in (
      "forward_clips_per_s",
      "train_clips_per_s",
      "compile_forward_s",
      "compile_train_s",
      "forward_gflops",
      "train_gflops",
      "forward_peak_fraction",
    ):
      assert r[key] > 0, key
  table = (out / "bench.md").read_text()
  assert "| r3d_tiny | 1x4x16x16x3 | auto |" in table
  assert (out / "bench.png").stat().st_size > 0 or not _has_matplotlib()
  assert "r3d_tiny" in capsys.readouterr().out


def _has_matplotlib():
  try:
    import matplotlib  # noqa: F401
  except ImportError:
    return False
  return True


def test_vs_torch_skips_without_torch(monkeypatch, capsys, tmp_path):
  monkeypatch.setattr(harness, "import_torch", lambda: None)
  assert vs_torch.main(["--out", str(tmp_path / "vs.json")]) == 0
  assert "skipped" in capsys.readouterr().out
  assert not os.path.exists(tmp_path / "vs.json")


@pytest.mark.slow  # compiles and times models
def test_vs_torch_ratios_at_tiny_size(tmp_path, capsys):
  pytest.importorskip("torchvision")
  out = tmp_path / "vs.json"
  assert (
    cli.main(
      [
        "bench",
        "--vs",
        "torch",
        "--models",
        "r3d_18",
        "--frames",
        "2",
        "--size",
        "16",
        "--batch",
        "2",
        "--reps",
        "1",
        "--num-classes",
        "5",
        "--out",
        str(out),
      ]
    )
    == 0
  )
  data = json.loads(out.read_text())
  (row,) = data["results"]
  assert row["model"] == "r3d_18" and row["forward_ratio"] > 0 and row["train_ratio"] > 0
  # Both torch formats are timed; each task's torch figure is its faster format's median.
  for task in ("forward", "train"):
    fmt = row["torch_memory_format"][task]
    others = [row["medians"][f"torch_{task}/{f}"] for f in harness.TORCH_MEMORY_FORMATS]
    assert row["seconds"][f"torch_{task}"] == row["medians"][f"torch_{task}/{fmt}"] == min(others)
  assert data["meta"]["cpu"] == harness.cpu_description() != ""
  table = (tmp_path / "vs.md").read_text()
  assert table.startswith(data["meta"]["time"]) and "cores, medians of 1" in table
  assert "| r3d_18" in table
  assert "inference jaxres/torch" in capsys.readouterr().out


@pytest.mark.slow  # compiles and times models
def test_torch_benches_share_weights_across_memory_formats():
  pytest.importorskip("torch")
  pytest.importorskip("torchvision")
  # Big enough that BatchNorm's batch statistics are not degenerate (layer4 at 1x4x4).
  benches = harness.torch_benches("r3d_18", (2, 8, 64, 64, 3), num_classes=5)
  assert list(benches) == list(harness.TORCH_MEMORY_FORMATS)
  first, last = (benches[f].model.state_dict() for f in harness.TORCH_MEMORY_FORMATS)
  # The same initial weights in both copies, and the same warm-up train step since: equal up to
  # the rounding of the two layouts (different initial weights would differ by ~100%; biases,
  # zero at first, hold only the step's ~1e-5 update, whose rounding the absolute term allows).
  assert first.keys() == last.keys()
  for key in first:
    a, b = first[key].double(), last[key].double()
    assert (a - b).abs().max() <= 1e-2 * a.abs().max() + 1e-5, key
  for bench in benches.values():
    assert bench.forward().shape == (2, 5)


@pytest.mark.slow  # builds and warms up torch models
def test_x3d_peer_is_pytorchvideos_x3d_built_for_the_clip():
  pytest.importorskip("torch")
  pytest.importorskip("pytorchvideo")
  benches = harness.torch_benches(
    "x3d_m", (1, 4, 32, 32, 3), num_classes=5, memory_formats=("channels_first",)
  )
  model = benches["channels_first"].model
  assert sum(p.numel() for p in model.parameters()) == 2_984_919  # x3d_m's with 5 classes
  assert tuple(model.blocks[5].pool.pool.kernel_size) == (4, 1, 1)  # the clip's final map
  assert benches["channels_first"].forward().shape == (1, 5)
  with pytest.raises(ValueError, match="square"):
    harness.torch_benches("x3d_m", (1, 4, 32, 48, 3))


# PyTorchVideo 0.1.5's models with 5 classes (the 400-class counts of test_parity_pytorchvideo less
# 395 x 2049 head weights), and the head pools for a 1x8x64x64 clip (the final maps: CSN 8/8
# frames, SlowFast's slow pathway 8/4 and fast 8, Slow-R50 8, R(2+1)D-50 8/4; 64/32 pixels).
PYTORCHVIDEO_PEERS = {
  "csn_r101": (21_404_421, [(1, 2, 2)]),
  "slowfast_r50": (33_656_013, [(2, 2, 2), (8, 2, 2)]),
  "slow_r50": (31_644_741, [(8, 2, 2)]),
  "r2plus1d_r50": (27_298_245, [(2, 2, 2)]),
}


@pytest.mark.slow  # builds and warms up torch models
@pytest.mark.parametrize("name", sorted(PYTORCHVIDEO_PEERS))
def test_pytorchvideo_resnet_peers_pool_over_the_clips_final_maps(name):
  torch = pytest.importorskip("torch")
  pytest.importorskip("pytorchvideo")
  bench = harness.torch_benches(
    name, (1, 8, 64, 64, 3), num_classes=5, memory_formats=("channels_first",)
  )["channels_first"]
  assert bench.forward().shape == (1, 5) and bench.train().ndim == 0
  model = bench.model.eval()
  params, pools = PYTORCHVIDEO_PEERS[name]
  assert sum(p.numel() for p in model.parameters()) == params
  pool = model.blocks[-2].pool if name == "slowfast_r50" else [model.blocks[-1].pool]
  assert [tuple(p.kernel_size) for p in pool] == pools
  x = harness.torch_input(name, torch.randn(1, 3, 8, 64, 64))
  if name == "slowfast_r50":  # PackPathway's frames: linspace(0, 7, 2) -> 0 and 7
    assert [p.shape[2] for p in x] == [2, 8] and torch.equal(x[0][:, :, 1], x[1][:, :, 7])
  # The logits are those of global average pools, which jaxres' head computes (and
  # tests/test_parity_pytorchvideo.py checks against PyTorchVideo with global pools).
  with torch.no_grad():
    want = model(list(x) if name == "slowfast_r50" else x)
    if name == "slowfast_r50":
      model.blocks[-2].pool = torch.nn.ModuleList([torch.nn.AdaptiveAvgPool3d(1)] * 2)
    else:
      model.blocks[-1].pool = torch.nn.AdaptiveAvgPool3d(1)
    got = model(x)
  assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="square"):
    harness.torch_benches(name, (1, 8, 64, 48, 3))


def test_vs_torch_refuses_an_unknown_memory_format(capsys):
  pytest.importorskip("torchvision")
  with pytest.raises(SystemExit):
    vs_torch.main(["--torch-formats", "channels_last,nhwc"])
  assert "--torch-formats: unknown ['nhwc']" in capsys.readouterr().err


@pytest.mark.slow  # compiles and times models
def test_profile_ops_attributes_time_to_dots(capsys):
  from benchmarks import profile_ops

  assert (
    profile_ops.main(
      [
        "--model",
        "r3d_tiny",
        "--batch",
        "1",
        "--frames",
        "4",
        "--size",
        "16",
        "--reps",
        "1",
        "--top",
        "5",
      ]
    )
    == 0
  )
  out = capsys.readouterr().out
  assert "r3d_tiny forward (1, 4, 16, 16, 3)" in out and "by kind:" in out
  # The convolutions are lowered to dots on CPU, so some time is attributed to dot ops.
  assert "dot" in out.split("by kind:")[1]


@pytest.mark.slow  # compiles and times models
def test_convs_times_the_models_lowering_beside_native(capsys):
  from benchmarks import convs

  convs.main(
    [
      "--only",
      "r21d_layer4_temporal",
      "--batch",
      "1",
      "--reps",
      "1",
      "--lowerings",
      "auto,native",
      "--no-torch",
    ]
  )
  out = capsys.readouterr().out
  assert "r21d_layer4_temporal: x (1, 2, 7, 7, 1152) k (3, 1, 1) -> 512" in out
  rows = [line.split()[0] for line in out.splitlines() if "fwd+bwd" in line]
  assert rows == ["auto", "native"]


def test_depthwise_grads_times_both_kernel_gradients_and_they_agree(capsys):
  from benchmarks import depthwise_grads

  depthwise_grads.main(["--shape", "2,3,5,4,6", "--reps", "1"])
  out = capsys.readouterr().out.splitlines()
  row = out[-1].split("|")
  assert row[1].strip() == "2,3,5,4,6 [2, 3, 5, 4, 6]", out
  assert float(row[5]) < 1e-5  # the same 27 x C sums either way


def test_deform_conv_times_both_forms_and_they_agree(capsys):
  from benchmarks import deform_conv

  deform_conv.main(["--shape", "1,6,7,8,5,4", "--reps", "1", "--no-torch"])
  row = capsys.readouterr().out.splitlines()[-1].split("|")
  assert row[1].strip() == "1,6,7,8,5,4 [1, 6, 7, 8, 5, 4]" and row[5].strip() == "-", row
  assert float(row[6]) < 1e-5  # the same columns and products either way


def test_blocks_lists_each_distinct_block_at_its_input_shape():
  from benchmarks import blocks

  found = blocks.pieces("r2plus1d_18", (1, 4, 16, 16, 3))
  assert [(p.name, p.count, p.in_shape) for p in found] == [
    ("stem", 1, (1, 4, 16, 16, 3)),
    ("layer1_0", 1, (1, 4, 8, 8, 64)),
    ("layer1_1", 1, (1, 4, 8, 8, 64)),
    ("layer2_0", 1, (1, 4, 8, 8, 64)),
    ("layer2_1", 1, (1, 2, 4, 4, 128)),
    ("layer3_0", 1, (1, 2, 4, 4, 128)),
    ("layer3_1", 1, (1, 1, 2, 2, 256)),
    ("layer4_0", 1, (1, 1, 2, 2, 256)),
    ("layer4_1", 1, (1, 1, 1, 1, 512)),
  ]
  assert [p.torch_path for p in found[:3]] == ["stem", "layer1.0", "layer1.1"]


@pytest.mark.slow  # compiles and times models
def test_blocks_times_jaxres_beside_torch_at_tiny_size(capsys):
  pytest.importorskip("torchvision")
  from benchmarks import blocks

  assert (
    blocks.main(
      [
        "--model",
        "mc3_18",
        "--batch",
        "1",
        "--frames",
        "4",
        "--size",
        "16",
        "--reps",
        "1",
        "--only",
        "stem,layer2_0",
      ]
    )
    == 0
  )
  out = capsys.readouterr().out
  rows = [line.split()[0] for line in out.splitlines() if "torch/jaxres" in line]
  assert rows == ["stem", "layer2_0", "total"]


def test_upscale_memory_benchmark_reports_plan_peak_and_speed(tmp_path):
  from benchmarks import upscale_memory

  out = tmp_path / "um.json"
  got = upscale_memory.main(
    [
      "--model",
      "edsr_bicubic_tiny",
      "--model-kwargs",
      '{"scale": 2}',
      "--size",
      "48x32",
      "--frames",
      "3",
      "--max-memory",
      "64GiB",
      "--json",
      str(out),
    ]
  )
  assert json.loads(out.read_text()) == got
  assert got["frames"] == 3 and got["frames_per_s"] > 0 and got["peak_rss_bytes"] > 0
  assert "whole frames" in got["plan"] and got["max_memory"] == 64 * 2**30
  assert got["estimate_bytes"] <= got["max_memory"]


def test_vs_basicsr_skips_without_basicsr_and_refuses_bad_arguments(monkeypatch, capsys, tmp_path):
  from benchmarks import vs_basicsr

  assert vs_basicsr.parse_upscale("chunk=2,tile=0; tile=24,tile_overlap=4") == [
    {"chunk": 2, "tile": 0},
    {"tile": 24, "tile_overlap": 4},
  ]
  with pytest.raises(SystemExit):
    vs_basicsr.main(["--upscale", "chunk=2,tiles=3"])
  with pytest.raises(SystemExit):
    vs_basicsr.main(["--models", "edsr,swinir"])
  assert "unknown ['swinir']" in capsys.readouterr().err
  monkeypatch.setattr(vs_basicsr, "import_basicsr", lambda: None)
  assert vs_basicsr.main(["--out", str(tmp_path / "sr.json")]) == 0
  assert "skipped" in capsys.readouterr().out
  assert not os.path.exists(tmp_path / "sr.json")


@pytest.mark.slow  # builds, compiles and times SR networks in four processes
def test_vs_basicsr_at_tiny_size(tmp_path, capsys):
  from benchmarks import vs_basicsr

  if vs_basicsr.import_basicsr() is None:
    pytest.skip("torch or BasicSR not installed")
  out = tmp_path / "sr.json"
  args = ["--models", "edsr,basicvsr", "--frames", "2", "--size", "64x48", "--features", "4"]
  args += ["--blocks", "1", "--reps", "1", "--out", str(out)]
  args += ["--upscale", "chunk=2,tile=0;chunk=1,overlap=1,tile=40,tile_overlap=4"]
  assert vs_basicsr.main(args) == 0
  data = json.loads(out.read_text())
  assert data["meta"]["cpu"] == harness.cpu_description() and data["meta"]["lr_size"] == [64, 48]
  assert [r["model"] for r in data["results"]] == ["edsr", "basicvsr"]
  for r in data["results"]:
    # The same weights on both sides: the outputs agree (the run fails otherwise).
    assert r["relative_error"] < vs_basicsr.AGREEMENT and r["clip"] == [1, 2, 48, 64, 3]
    assert r["ratio"] > 0 and r["ratio_fastest"] > 0 and min(r["peak_bytes"].values()) > 0
    assert len(r["all_seconds"]["basicsr"]) == len(r["all_seconds"]["jaxres"]) == 1
    assert [u["setting"].get("tile") for u in r["upscale"]] == [0, 40]
    assert all(u["frames_per_s"] > 0 for u in r["upscale"])
  table = (tmp_path / "sr.md").read_text()
  assert table.startswith(data["meta"]["time"]) and "| edsr (1x4) |" in table
  assert "jaxres/BasicSR" in capsys.readouterr().out


def test_checkpoint_save_times_both_ways(tmp_path):
  from benchmarks import checkpoint_save

  out = tmp_path / "save.json"
  args = ["--devices", "2", "--saves", "2", "--shape", "2,4,16,16,3", "--json", str(out)]
  results = checkpoint_save.main(args)
  assert json.loads(out.read_text()) == results and results["devices"] == 2
  assert {k: len(v) for k, v in results["seconds"].items()} == {"orbax_default": 2, "whole": 2}
  assert min(min(v) for v in results["seconds"].values()) > 0
