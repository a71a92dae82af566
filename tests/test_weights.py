"""Published weights by name: download from a local server, verify, cache, convert, load.

Nothing here touches the internet: a server on 127.0.0.1, started and stopped by the tests, serves
checkpoints written by torch from randomly initialised reference models.
"""

import hashlib
import os

import jax
import numpy as np
import pytest
from local_server import LocalServer

from jaxres import inference, weights

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


@pytest.fixture
def served(tmp_path, monkeypatch):
  """`(server, folder, cache)`: a local server over `folder`; the jaxres cache in `cache`."""
  folder, cache = tmp_path / "served", tmp_path / "cache"
  folder.mkdir()
  monkeypatch.setenv("JAXRES_CACHE_DIR", str(cache))
  monkeypatch.delenv(weights.MIRROR_VARIABLE, raising=False)
  server = LocalServer(folder)
  yield server, folder, cache
  server.stop()


def _sha256(path):
  return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _resnet18_file(folder, legacy=False):
  """A randomly initialised torchvision resnet18 (10 classes) saved as torch would publish it."""
  torch.manual_seed(0)
  reference = torchvision.models.resnet18(num_classes=10).eval()
  with torch.no_grad():  # BatchNorm statistics that are not the identity
    for m in reference.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.2, 0.2)
        m.running_var.uniform_(0.5, 1.5)
  path = folder / "resnet18-test.pth"
  torch.save(reference.state_dict(), path, _use_new_zipfile_serialization=not legacy)
  name = f"resnet18-{_sha256(path)[:8]}.pth"  # torchvision's naming: a sha256 prefix
  os.rename(path, folder / name)
  return reference, folder / name


def _register(name, url, **kwargs):
  return weights.register(
    name,
    url=url,
    arch="resnet18",
    converter="torchvision",
    model_kwargs={"num_classes": 10},
    overwrite=True,
    **kwargs,
  )


def _leftovers(cache):
  folder = cache / "weights"
  return sorted(n for n in os.listdir(folder) if n != "sha256.json") if folder.exists() else []


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_downloaded_weights_give_the_reference_logits_and_load_offline_after(served, legacy):
  server, folder, cache = served
  reference, path = _resnet18_file(folder, legacy=legacy)
  _register("resnet18.test", f"{server.url}/{path.name}", sha256=path.name[9:17])
  model, variables, info = inference.load_pretrained("resnet18.test", progress=False)
  x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
  with torch.no_grad():
    expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-4, atol=1e-4)
  assert info.name == "resnet18.test" and info.url.endswith(path.name)
  assert _leftovers(cache) == [path.name]
  # The second load needs neither the server nor the file: the converted variables are cached.
  server.stop()
  os.remove(cache / "weights" / path.name)
  _, again, _ = inference.load_pretrained("resnet18.test", progress=False)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(again), jax.device_get(variables))


def test_a_wrong_hash_a_cut_connection_and_a_404_leave_nothing_under_the_final_name(served):
  server, folder, cache = served
  _, path = _resnet18_file(folder)
  _register("resnet18.wronghash", f"{server.url}/{path.name}", sha256="0123abcd")
  with pytest.raises(
    weights.WeightsError,
    match=r"resnet18.wronghash: .* has sha256 .*not the "
    r"published 0123abcd",
  ):
    weights.fetch(weights.get("resnet18.wronghash"), progress=False)
  assert _leftovers(cache) == []
  _register("resnet18.cut", f"{server.url}/cut/{path.name}")
  with pytest.raises(
    weights.WeightsError,
    match=r"resnet18.cut: downloading .*/cut/.* failed: "
    r"the connection closed after",
  ):
    weights.fetch(weights.get("resnet18.cut"), progress=False)
  assert _leftovers(cache) == []
  _register("resnet18.missing", f"{server.url}/nothing-here.pth")
  with pytest.raises(
    weights.WeightsError,
    match=r"resnet18.missing: downloading "
    r"http://127.0.0.1:\d+/nothing-here.pth failed: HTTP 404.*jaxres weights "
    r"import FILE resnet18.missing",
  ):
    weights.fetch(weights.get("resnet18.missing"), progress=False)
  assert _leftovers(cache) == []
  # A rerun starts clean and succeeds once the file is right.
  _register("resnet18.cut", f"{server.url}/{path.name}")
  assert weights.fetch(weights.get("resnet18.cut"), progress=False) == str(
    cache / "weights" / path.name
  )


def test_mirror_and_import_and_a_changed_file_without_a_published_hash(
  served, monkeypatch, tmp_path
):
  server, folder, cache = served
  _, path = _resnet18_file(folder)
  entry = _register("resnet18.mirrored", f"http://127.0.0.1:9/publisher/{path.name}")
  monkeypatch.setenv(weights.MIRROR_VARIABLE, server.url + "/")
  cached = weights.fetch(entry, progress=False)  # from the mirror, by file name
  assert _sha256(cached) == _sha256(path)
  monkeypatch.delenv(weights.MIRROR_VARIABLE)
  # No published hash: the first reading is recorded, and a file that changes is refused.
  with open(cached, "ab") as f:
    f.write(b"changed")
  with pytest.raises(weights.WeightsError, match="not the recorded when it was first read"):
    weights.fetch(entry, progress=False)
  os.remove(cached)
  # `import`: the user's own copy is checked and copied, never moved.
  mine = tmp_path / "downloads" / "mine.pth"
  mine.parent.mkdir()
  mine.write_bytes(path.read_bytes())
  assert weights.import_file(entry, str(mine)) == cached and mine.exists()
  mine.write_bytes(b"not it")
  with pytest.raises(weights.WeightsError, match=f"{mine}"):
    weights.import_file(entry, str(mine))


def test_registry_refuses_bad_entries_and_suggests_names():
  with pytest.raises(ValueError, match="ARCH.TAG"):
    weights.register("NoDot", url="https://x/y.pth", arch="r3d_18", converter="torchvision")
  with pytest.raises(ValueError, match="no model 'r3d_99'"):
    weights.register("r3d_99.x", url="https://x/y.pth", arch="r3d_99", converter="torchvision")
  with pytest.raises(ValueError, match="converter 'caffe'"):
    weights.register("r3d_18.x", url="https://x/y.pth", arch="r3d_18", converter="caffe")
  with pytest.raises(KeyError, match="did you mean r3d_18.kinetics400"):
    weights.get("r3d18.kinetics400")
  assert len(weights.get("r3d_18.kinetics400").class_names()) == 400
  assert weights.read_class_list("imagenet1k")[0] == "tench"


def test_readme_lists_every_registered_entry():
  readme = open(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
  ).read()
  shipped = {
    n
    for n in weights.names()  # not the entries other tests register on 127.0.0.1
    if not weights.get(n).url.startswith("http://127.0.0.1")
  }
  listed = {
    line.split("`")[1]
    for line in readme.splitlines()
    if line.startswith("| `") and line.split("`")[1] in shipped
  }
  assert listed == shipped and len(shipped) >= 20
