"""pyproject.toml's ranges and requirements/constraints.txt's pins agree, and the extras are split as
the README's Install section says (the core install needs no TensorFlow, orbax, ml_collections,
PyAV, imageio or torch)."""

import os

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project():
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)["project"]


def _pins():
  pins = {}
  with open(os.path.join(REPO, "requirements", "constraints.txt")) as f:
    for line in f:
      line = line.split("#")[0].strip()
      if line:
        name, version = line.split("==")
        pins[canonicalize_name(name)] = version
  return pins


def _requirements():
  project = _project()
  groups = {"core": project["dependencies"], **project["optional-dependencies"]}
  return {group: [Requirement(r) for r in reqs] for group, reqs in groups.items()}


def test_every_requirement_is_pinned_within_its_range():
  pins = _pins()
  assert "jaxres" not in pins
  for group, reqs in _requirements().items():
    for req in reqs:
      name = canonicalize_name(req.name)
      if name == "jaxres":
        continue
      assert name in pins, f"{req} ({group}) has no pin in requirements/constraints.txt"
      assert req.specifier.contains(pins[name], prereleases=True), (
        f"requirements/constraints.txt pins {name}=={pins[name]} outside {req} ({group})"
      )


def test_extras_split_core_from_video_torch_and_test():
  reqs = _requirements()
  names = {group: {canonicalize_name(r.name) for r in rs} for group, rs in reqs.items()}
  assert names["core"] == {"jax", "jaxlib", "flax", "optax", "numpy"}
  assert {
    "tensorflow-cpu",
    "tensorflow-datasets",
    "av",
    "imageio",
    "ml-collections",
    "orbax-checkpoint",
    "scikit-image",
  } <= names["video"]
  assert names["torch"] == {"torch", "torchvision", "pytorchvideo", "basicsr"}
  assert {"pytest", "pytest-xdist", "scikit-image", "import-linter", "jaxres"} <= names["test"]
  self_extras = {
    group: set().union(*(r.extras for r in rs if r.name == "jaxres")) for group, rs in reqs.items()
  }
  assert self_extras["test"] == {"video"}
  assert self_extras["all"] == {"video", "torch", "test"}
  assert all(
    r.specifier for group in ("core", "video", "torch") for r in reqs[group]
  )  # ranges, not bare names
