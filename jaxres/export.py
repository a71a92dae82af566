"""A trained model's inference function, out of JAX: `jax.export` (StableHLO) and TF SavedModel.

`export_model` writes into a folder:

- `model.jax_exported`: `jax.export`'s serialisation of `clips -> outputs` with the variables
  inside as constants. `jax.export.deserialize(bytes).call(clips)` runs it in any JAX of the same
  or a later version, without jaxres or flax (`load_exported` does exactly that). The batch size
  is fixed (`batch`) or symbolic (`batch=None`: any batch size).
- `model.json`: what a client needs: input shape (`null` for a symbolic batch) and dtype, the
  normalisation the input must already have (`(pixels / 255 - mean) / std`, channels-last RGB),
  the output's meaning and the class names.
- optionally `saved_model/`: a TensorFlow SavedModel (signature `serving_default`, input
  `clips`, output `outputs`) made with `jax.experimental.jax2tf` (native serialisation: the same
  StableHLO inside a TF graph), for TF Serving.

Convolutions are traced with XLA's own convolution (`conv_lowering="native"`) so the artefact
does not carry the CPU-specific lowering of the machine that exported it. It is lowered for the
`platforms` asked for (default: cpu, cuda and tpu; `jax.export` knows cpu, cuda, rocm and tpu), so
one file serves on all of them.

The folder is written whole (`jaxres.atomic_files.atomic_folder`): built beside it and swapped in,
so exporting again replaces an earlier export entirely (no old `saved_model/` beside a new model)
and a kill leaves the old export or the new one, never a mix. A folder holding anything else is
refused before any work unless `overwrite=True`.

Example:
  >>> paths = export_run("runs/demo", "exported/demo", batch=None)
  >>> call, spec = load_exported("exported/demo")
  >>> logits = call(clips)                      # clips: float32 [any B, 8, 32, 32, 3]
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp

from jaxres.atomic_files import atomic_folder, check_output, write_atomic

EXPORTED_FILE = "model.jax_exported"
SPEC_FILE = "model.json"
SAVED_MODEL_DIR = "saved_model"
PLATFORMS = ("cpu", "cuda", "tpu")
KNOWN_PLATFORMS = ("cpu", "cuda", "rocm", "tpu")  # what jax.export lowers for
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

__all__ = [
  "export_model",
  "export_run",
  "load_exported",
  "inference_function",
  "is_export",
  "check_export_options",
  "EXPORTED_FILE",
  "SPEC_FILE",
  "SAVED_MODEL_DIR",
]


def inference_function(
  model, variables, *, dtype: Optional[str] = None
) -> Callable[[jax.Array], jax.Array]:
  """`clips -> float32 outputs` of `model` in inference mode, the variables closed over.

  Args:
    model: a jaxres model.
    variables: its variables.
    dtype: compute dtype name ("float32", "bfloat16", "float16"; None keeps the model's). The
      parameters keep their dtype; outputs are float32.

  Returns:
    The function (pure, jittable).

  Example:
    >>> f = inference_function(run.model, run.variables, dtype="bfloat16")
  """
  clone = {}
  if dtype is not None:
    if dtype not in DTYPES:
      raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    clone["dtype"] = DTYPES[dtype]
  if hasattr(model, "conv_lowering"):
    clone["conv_lowering"] = "native"  # portable: no CPU-specific lowering baked in
  model = model.clone(**clone) if clone else model

  def infer(clips):
    return model.apply(variables, clips, train=False).astype(jnp.float32)

  return infer


def is_export(folder: str) -> bool:
  """Whether `folder` holds only what `export_model` writes (an earlier export, replaced whole).

  Example:
    >>> is_export("exported/demo")
    True
  """
  names = set(os.listdir(folder))
  return bool(names) and names <= {EXPORTED_FILE, SPEC_FILE, SAVED_MODEL_DIR}


def check_export_options(
  out_dir: str,
  *,
  batch: Optional[int] = 1,
  platforms: Sequence[str] = PLATFORMS,
  inputs: Sequence[str] = (),
  overwrite: bool = False,
  option: str = "out_dir",
) -> None:
  """Refuses, before any work, what `export_model` could not write: a bad batch or platform, or
  an output folder the write rule forbids (`jaxres.atomic_files.check_output`).

  Args:
    out_dir: the export folder.
    batch: the batch size (None: symbolic); must be >= 1.
    platforms: each one of cpu, cuda, rocm, tpu; at least one.
    inputs: what the export reads (a run folder, a labels file): never inside `out_dir`.
    overwrite: replace a folder that holds other things.
    option: how the user named the folder, for the message.

  Raises:
    ValueError: one line naming the option and what is allowed.

  Example:
    >>> check_export_options("exported/demo", batch=2, platforms=["cpu"])
  """
  if batch is not None and (isinstance(batch, bool) or int(batch) != batch or batch < 1):
    raise ValueError(f"batch must be an integer >= 1 (or None: any), got {batch}.")
  unknown = [p for p in platforms if p not in KNOWN_PLATFORMS]
  if unknown or not platforms:
    raise ValueError(
      f"platforms must be some of {', '.join(KNOWN_PLATFORMS)}, got "
      f"{', '.join(map(repr, platforms)) or 'none'}."
    )
  check_output(
    out_dir,
    inputs=inputs,
    kind="artefact",
    overwrite=overwrite,
    is_artefact=is_export,
    option=option,
  )


def export_model(
  model,
  variables,
  out_dir: str,
  *,
  input_shape: Sequence[int],
  batch: Optional[int] = 1,
  dtype: Optional[str] = None,
  platforms: Sequence[str] = PLATFORMS,
  saved_model: bool = False,
  metadata: Optional[dict] = None,
  overwrite: bool = False,
) -> dict[str, str]:
  """Writes `model`'s inference function into `out_dir` (see the module notes).

  Args:
    model: a jaxres model.
    variables: its variables.
    out_dir: the folder (created).
    input_shape: one example's shape, e.g. `(T, H, W, 3)` for clips.
    batch: the batch size traced; None for a symbolic batch (any size at call time).
    dtype: compute dtype name (None: the model's).
    platforms: where the artefact may run (lowered for each).
    saved_model: also write a TensorFlow SavedModel (needs TensorFlow).
    metadata: more entries for `model.json` (e.g. `class_names`, `mean`, `std`).
    overwrite: replace an `out_dir` that holds other things than an earlier export.

  Returns:
    `{"exported": path, "spec": path[, "saved_model": path]}`.

  Raises:
    ValueError: a bad batch or platform, or an `out_dir` the write rule refuses
      (`check_export_options`), before any work.

  Example:
    >>> export_model(model, variables, "out", input_shape=(16, 112, 112, 3), batch=None)
  """
  from jax import export as jax_export  # pylint: disable=import-outside-toplevel

  check_export_options(out_dir, batch=batch, platforms=platforms, overwrite=overwrite)
  infer = inference_function(model, variables, dtype=dtype)
  if batch is None:
    (b,) = jax_export.symbolic_shape("b", constraints=("b >= 1",))
  else:
    b = int(batch)
  arg = jax.ShapeDtypeStruct((b, *input_shape), jnp.float32)
  exported = jax_export.export(jax.jit(infer), platforms=tuple(platforms))(arg)
  out = exported.out_avals[0]
  spec = {
    "format": "jax.export",
    "jax_version": jax.__version__,
    "file": EXPORTED_FILE,
    "platforms": list(exported.platforms),
    "input": {
      "name": "clips",
      "shape": [batch, *map(int, input_shape)],
      "dtype": "float32",
      "layout": "channels-last RGB",
    },
    "output": {
      "name": "outputs",
      "shape": [batch, *map(int, out.shape[1:])],
      "dtype": str(out.dtype),
    },
    "compute_dtype": dtype or "model default",
    **(metadata or {}),
  }
  paths = {
    "exported": os.path.join(out_dir, EXPORTED_FILE),
    "spec": os.path.join(out_dir, SPEC_FILE),
  }
  if saved_model:
    paths["saved_model"] = os.path.join(out_dir, SAVED_MODEL_DIR)
    spec["saved_model"] = {
      "dir": SAVED_MODEL_DIR,
      "signature": "serving_default",
      "input": "clips",
      "output": "outputs",
    }
  with atomic_folder(out_dir) as folder:  # swapped in whole: no earlier export's files remain
    write_atomic(os.path.join(folder, EXPORTED_FILE), exported.serialize())
    if saved_model:
      _save_tf(infer, folder, (batch, *input_shape), platforms)
    write_atomic(os.path.join(folder, SPEC_FILE), json.dumps(spec, indent=2))
  return paths


def _save_tf(infer, out_dir: str, shape: tuple, platforms: Sequence[str]) -> str:
  """A SavedModel of `infer` through jax2tf's native serialisation (StableHLO in a TF graph)."""
  from jax.experimental import jax2tf  # pylint: disable=import-outside-toplevel

  from jaxres.data.tfhost import tf  # pylint: disable=import-outside-toplevel

  polymorphic = ["(b, ...)"] if shape[0] is None else None
  converted = jax2tf.convert(
    infer,
    polymorphic_shapes=polymorphic,  # native serialisation
    native_serialization_platforms=tuple(platforms),
    with_gradient=False,
  )
  module = tf.Module()
  module.serve = tf.function(
    lambda clips: {"outputs": converted(clips)},
    autograph=False,
    input_signature=[tf.TensorSpec(shape, tf.float32, name="clips")],
  )
  path = os.path.join(out_dir, SAVED_MODEL_DIR)
  tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
  return path


def load_exported(out_dir: str) -> tuple[Callable[[Any], jax.Array], dict]:
  """The inference function of an `export_model` folder, with only `jax.export` (no jaxres model).

  Args:
    out_dir: the folder (holding `model.jax_exported` and `model.json`).

  Returns:
    `(call, spec)`: `call(clips)` runs the exported function; `spec` is `model.json`.

  Example:
    >>> call, spec = load_exported("exported/demo")
    >>> call(np.zeros((2, *spec["input"]["shape"][1:]), np.float32)).shape
  """
  from jax import export as jax_export  # pylint: disable=import-outside-toplevel

  path = os.path.join(out_dir, EXPORTED_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No {EXPORTED_FILE} in {out_dir}: write it with `jaxres export`.")
  with open(path, "rb") as f:
    exported = jax_export.deserialize(bytearray(f.read()))
  with open(os.path.join(out_dir, SPEC_FILE)) as f:
    spec = json.load(f)
  return exported.call, spec


def export_run(
  workdir: str,
  out_dir: str,
  *,
  batch: Optional[int] = 1,
  dtype: Optional[str] = None,
  step: Optional[int] = None,
  platforms: Sequence[str] = PLATFORMS,
  saved_model: bool = False,
  class_names: Optional[Sequence[str]] = None,
  overwrite: bool = False,
) -> dict[str, str]:
  """`export_model` for the model of a training run, with its input shape and normalisation.

  The input is what the run's eval views are (`jaxres.predict.video_views`): float32
  `[B, data.num_frames, data.crop_size, data.crop_size, 3]` normalised with `data.mean` and
  `data.std` (super-resolution models: the LR crop, `crop_size // scale`, in [0, 1]).

  Args:
    workdir: the `jaxres train` workdir.
    out_dir: the export folder.
    batch: batch size traced (None: any).
    dtype: compute dtype name (None: the run's).
    step: checkpoint step (None: the latest).
    platforms: see `export_model`.
    saved_model: also write a TF SavedModel.
    class_names: names for `model.json` (default: the run's `classes.txt`, if any); as many as
      the model's classes.
    overwrite: see `export_model`.

  Returns:
    The paths written (see `export_model`).

  Raises:
    ValueError: bad options, an output the write rule refuses or class names of the wrong count,
      before the export's work.

  Example:
    >>> export_run("runs/demo", "exported/demo", batch=None, saved_model=True)
  """
  from jaxres import models  # pylint: disable=import-outside-toplevel
  from jaxres.data import sources  # pylint: disable=import-outside-toplevel
  from jaxres.inference import load_run  # pylint: disable=import-outside-toplevel

  check_export_options(
    out_dir, batch=batch, platforms=platforms, inputs=[workdir], overwrite=overwrite
  )
  run = load_run(workdir, step=step)
  spec = models.spec(run.config.model.name)
  _check_class_names(class_names, run.model, spec.task)
  d = run.config.data
  size = d.crop_size
  if spec.task == "super_resolution":
    size //= int(run.config.model.get("scale", 4))
  input_shape = ((d.num_frames,) if spec.input_rank == 5 else ()) + (size, size, 3)
  if class_names is None and spec.task == "classification":
    folder = os.path.abspath(workdir)
    if os.path.isfile(os.path.join(folder, sources.CLASS_NAMES_FILE)):
      class_names = sources.read_class_names(folder)
  metadata = {
    "model": run.config.model.name,
    "task": spec.task,
    "step": run.step,
    "normalization": {
      "mean": [float(m) for m in d.mean],
      "std": [float(s) for s in d.std],
      "formula": "(pixels / 255 - mean) / std",
    },
    "output_meaning": (
      "logits (softmax for probabilities)"
      if spec.task == "classification"
      else "upscaled frames in [0, 1]"
    ),
    "class_names": list(class_names or []),
  }
  if spec.task == "super_resolution":
    metadata["scale"] = int(run.config.model.get("scale", 4))
  paths = export_model(
    run.model,
    run.variables,
    out_dir,
    input_shape=input_shape,
    batch=batch,
    dtype=dtype,
    platforms=platforms,
    saved_model=saved_model,
    metadata=metadata,
    overwrite=overwrite,
  )
  return paths


def export_weights(
  name: str,
  out_dir: str,
  *,
  batch: Optional[int] = 1,
  dtype: Optional[str] = None,
  platforms: Sequence[str] = PLATFORMS,
  saved_model: bool = False,
  class_names: Optional[Sequence[str]] = None,
  frames: Optional[int] = None,
  size: Optional[int] = None,
  overwrite: bool = False,
) -> dict[str, str]:
  """`export_model` for published weights by name (`jaxres weights list`).

  The input is the publisher's clip: float32 `[B, num_frames, crop_size, crop_size, 3]`
  normalised with its mean and std (the model's own default clip where the entry gives none);
  super-resolution models take LR frames in [0, 1], `size` pixels square (default 64).

  Args:
    name: a `jaxres.weights` entry, e.g. `"x3d_m.kinetics400"`.
    out_dir: the export folder.
    batch, dtype, platforms, saved_model: see `export_model`.
    class_names: names for `model.json` (default: the entry's); as many as the model's classes.
    frames: frames per clip instead of the publisher's.
    size: square input size in pixels instead of the publisher's crop.
    overwrite: see `export_model`.

  Returns:
    The paths written (see `export_model`).

  Example:
    >>> export_weights("r3d_18.kinetics400", "exported/r3d_18", batch=None)
  """
  from jaxres import models  # pylint: disable=import-outside-toplevel
  from jaxres.inference import load_pretrained  # pylint: disable=import-outside-toplevel

  check_export_options(out_dir, batch=batch, platforms=platforms, overwrite=overwrite)
  model, variables, info = load_pretrained(name)
  spec = models.spec(info.arch)
  _check_class_names(class_names, model, spec.task)
  pre = info.preprocessing
  sr = spec.task == "super_resolution"
  size = size or (64 if sr else pre.get("crop_size") or spec.crop_size)
  frames = frames or pre.get("num_frames") or spec.num_frames or (7 if sr else None)
  if size is None or (spec.input_rank == 5 and frames is None):
    raise ValueError(f"{name}: give the input's size (and frames): the entry has no default.")
  input_shape = ((frames,) if spec.input_rank == 5 else ()) + (size, size, 3)
  metadata = {
    "model": info.arch,
    "task": spec.task,
    "weights": name,
    "weights_url": info.url,
    "output_meaning": ("upscaled frames in [0, 1]" if sr else "logits (softmax for probabilities)"),
    "class_names": list(class_names or info.class_names or []),
  }
  if sr:
    metadata["scale"] = int(getattr(model, "scale", 1))
    metadata["normalization"] = {"formula": "pixels / 255"}
  else:
    metadata["normalization"] = {
      "mean": [float(m) for m in pre.get("mean", ())],
      "std": [float(s) for s in pre.get("std", ())],
      "formula": "(pixels / 255 - mean) / std",
    }
  return export_model(
    model,
    variables,
    out_dir,
    input_shape=input_shape,
    batch=batch,
    dtype=dtype,
    platforms=platforms,
    saved_model=saved_model,
    metadata=metadata,
    overwrite=overwrite,
  )


def _check_class_names(class_names: Optional[Sequence[str]], model, task: str) -> None:
  """Refuses class names that do not match the model (predict would refuse the export)."""
  if class_names is None:
    return
  if task != "classification":
    raise ValueError(f"class names are for classifiers; this model's task is {task}.")
  num_classes = int(model.num_classes)
  if len(class_names) != num_classes:
    raise ValueError(
      f"{len(class_names)} class names given, the model has {num_classes} classes; give one "
      "name per class."
    )
