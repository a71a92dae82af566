"""SR through the training engine: configs load, the pipeline's HR frames train through the task's
on-device degradation, a short training beats bicubic on held-out generated footage, and
`jaxres upscale` restores the checkpoint (refusing the wrong one)."""

import glob
import os

import jax
import ml_collections
import numpy as np
import pytest

from jaxres import cli, models
from jaxres.sr import checkpoint, evaluate, footage
from jaxres.tasks import SuperResolutionTask, degradation
from jaxres.train import build
from jaxres.train.config import CONFIGS_DIR, load_config
from jaxres.train.loop import train_and_evaluate
from jaxres.train.run import save_config

SR_CONFIGS = sorted(glob.glob(os.path.join(CONFIGS_DIR, "sr_*.py")))


@pytest.mark.parametrize("path", SR_CONFIGS, ids=os.path.basename)
def test_sr_configs_load_and_agree_on_the_scale(path):
  config = load_config(path)
  assert models.spec(config.model.name).task == "super_resolution"
  assert config.model.scale == config.task.scale
  config = load_config(path, ["--config.model.scale=4"])  # one override moves both
  assert config.task.scale == 4
  task = build.build_task(config)
  assert isinstance(task, SuperResolutionTask) and task.scale == 4
  task.check_data(config.data)  # HR crops divide by the scale, frames in [0, 1]
  bad = load_config(path, ["--config.model.scale=3"])
  with pytest.raises(ValueError, match="data.crop_size=64 is not a multiple of the scale"):
    build.build_task(bad).check_data(bad.data)


@pytest.mark.parametrize(
  "name", ["sr_edsr_demo", "sr_basicvsr_demo", "reds_basicvsr", "vimeo_basicvsrpp"]
)
def test_the_sr_scale_is_set_once_and_checked_once(name):
  from jaxres.train.checks import check_config

  config = load_config(name, ["--config.task.scale=2", "--config.data.lr_path=/lr"])
  assert config.model.scale == config.task.scale == config.data.lr_scale == 2  # one reference
  config = load_config(name)
  with config.unlocked():  # a config built without the recipe (or edited by hand) may disagree
    config.model = ml_collections.ConfigDict(dict(config.model.to_dict(), scale=3))  # untied
    config.data.lr_path = "/lr"
  assert (config.model.scale, config.task.scale) == (3, config.data.lr_scale)
  with pytest.raises(
    ValueError,
    match=r"scale differs between model\.scale=3, task\.scale=\d, "
    r"data\.lr_scale=\d: set it once, as model\.scale",
  ):
    check_config(config, build.build_task(config), uses_data_config=True)


def test_sr_trains_on_pipeline_frames_with_lr_made_on_device(tmp_path):
  # The data layer yields HR frames only; the task degrades them inside the compiled steps.
  config = load_config(
    "sr_edsr_demo",
    [
      "--config.model.num_blocks=1",
      "--config.model.features=8",
      "--config.num_train_steps=2",
      "--config.global_batch_size=8",
      "--config.data.num_frames=2",
      "--config.data.crop_size=32",
      "--config.data.demo.videos_per_class=1",
      "--config.data.demo.num_frames=3",
      "--config.data.demo.size=64",
      "--config.eval_steps=1",
      "--config.checkpoint.async_save=False",
      "--config.progress_bar=False",
      "--config.plot=False",
      "--config.tensorboard=False",
    ],
  )
  summary = train_and_evaluate(config, str(tmp_path))
  ev = summary["eval"]
  assert summary["step"] == 2 and np.isfinite(summary["train"]["loss"])
  assert {"psnr_y", "psnr_y_bicubic", "gain_y"} <= set(ev) and 10 < ev["psnr_y_bicubic"] < 60


def test_task_loss_metrics_and_per_video_aggregation():
  task = SuperResolutionTask(scale=2, loss="l1")
  rng = np.random.default_rng(0)
  hr = rng.random((3, 2, 24, 24, 3)).astype(np.float32)
  lr = np.asarray(degradation.degrade(hr, degradation.Degradation(2)))
  loss, m = task.loss_and_metrics(hr + 0.1, {"lr": lr, "hr": hr})
  np.testing.assert_allclose(loss, 0.1, rtol=1e-5)
  np.testing.assert_allclose(m["psnr"], 20.0, rtol=1e-4)
  per_clip = task.eval_metrics(hr, {"lr": lr, "hr": hr, "video_id": np.array([0, 0, 1])})
  assert per_clip["psnr_y"].shape == (3,)
  values = dict(per_clip, weight=np.array([1.0, 1.0, 0.0]))  # the third clip is padding
  out = task.aggregate([values])
  assert out["num_videos"] == 1 and out["gain_y"] > 0
  with pytest.raises(ValueError, match="loss"):
    SuperResolutionTask(loss="l2")


def _footage_batches(seed, clips, scale, patch, batch, frames=3, size=48):
  """Endless batches of random aligned patches from generated footage (train data for the engine)."""
  videos = footage.generate_clips(seed, clips, frames, size, size).astype(np.float32) / 255.0
  deg = degradation.Degradation(scale)
  crop = jax.jit(lambda hr, key: degradation.random_aligned_patches(hr, patch, scale, key))
  make_lr = jax.jit(lambda hr: degradation.degrade(hr, deg))

  def train(start_step):
    step = start_step
    while True:
      rng = np.random.default_rng(step)
      hr = np.asarray(crop(videos[rng.choice(clips, batch)], jax.random.key(step)))
      yield {"lr": np.asarray(make_lr(hr)), "hr": hr}
      step += 1

  return train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sr_run"))
  config = load_config(
    "sr_edsr_demo",
    [
      "--config.model.num_blocks=2",
      "--config.model.features=16",
      "--config.num_train_steps=250",
      "--config.global_batch_size=8",
      "--config.parallel.num_devices=1",
      "--config.optimizer.learning_rate=0.002",
      "--config.eval_every_steps=0",
      "--config.checkpoint.async_save=False",
      "--config.progress_bar=False",
      "--config.plot=False",
    ],
  )
  train = _footage_batches(seed=1, clips=48, scale=2, patch=16, batch=8, frames=4, size=64)
  held_out = footage.generate_clips(evaluate.HELD_OUT_SEED, 4, 4, 64, 64).astype(np.float32) / 255
  eval_batch = {
    "lr": np.asarray(degradation.degrade(held_out, degradation.Degradation(2))),
    "hr": held_out,
  }
  summary = train_and_evaluate(config, workdir, train_data=train, eval_data=lambda: [eval_batch])
  save_config(config, workdir)
  return workdir, config, summary


@pytest.mark.slow  # trains 250 steps
def test_short_training_beats_bicubic_on_held_out_footage(trained_run):
  workdir, _, summary = trained_run
  ev = summary["eval"]
  assert summary["step"] == 250
  assert ev["gain_y"] > 1.0, ev  # dB over bicubic on held-out generated footage
  # Whole frames through the upscale path agree.
  loaded = checkpoint.load_sr_model(workdir, expect_scale=2)
  videos = footage.generate_clips(evaluate.HELD_OUT_SEED + 1, 2, 4, 64, 64)
  rows = evaluate.evaluate_videos(
    loaded.model, loaded.variables, list(videos), scale=2, clip_model=loaded.clip_model
  )
  gains = [r["psnr_y"] - r["bicubic_psnr_y"] for r in rows]
  assert min(gains) > 0 and np.mean(gains) > 1.0, evaluate.format_table(rows)


@pytest.mark.slow  # trains 250 steps
def test_upscale_command_restores_checkpoint_and_refuses_the_wrong_one(
  trained_run, tmp_path, capsys
):
  workdir, config, _ = trained_run
  src = str(tmp_path / "in.mp4")
  footage.write_video(src, footage.generate_clips(3, 1, 6, 20, 24)[0], fps=10)
  out = str(tmp_path / "out.mp4")
  assert cli.main(["upscale", src, out, "--checkpoint", workdir, "--no-progress"]) == 0
  assert "6 frames of 48x40 at 10 fps" in capsys.readouterr().out
  png = str(tmp_path / "cmp.png")
  assert cli.main(["upscale", src, png, "--checkpoint", workdir, "--compare", "--no-progress"]) == 0
  assert (
    f"wrote an image to {png}: columns bicubic | edsr_bicubic_baseline x2"
    in capsys.readouterr().out
  )
  os.remove(png)
  # Another scale, another architecture, a config that does not fit the parameters, no workdir.
  assert (
    cli.main(["upscale", src, str(tmp_path / "x.mp4"), "--checkpoint", workdir, "--scale", "4"])
    == 1
  )
  assert "not x4" in capsys.readouterr().err
  assert (
    cli.main(
      ["upscale", src, str(tmp_path / "x.mp4"), "--checkpoint", workdir, "--model", "basicvsr"]
    )
    == 1
  )
  assert "not basicvsr" in capsys.readouterr().err
  wrong = load_config(
    "sr_edsr_demo",
    ["--config.model.num_blocks=2", "--config.model.features=16", "--config.model.scale=3"],
  )
  with pytest.raises(ValueError, match="does not fit"):
    checkpoint.load_sr_model(workdir, config=wrong)
  with pytest.raises(FileNotFoundError):
    checkpoint.load_sr_model(str(tmp_path / "nowhere"))
  classifier = load_config("demo")
  with pytest.raises(ValueError, match="not a super-resolution model"):
    checkpoint.load_sr_model(workdir, config=classifier)
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]
