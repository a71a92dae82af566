"""`train_and_evaluate(config, workdir)`: the training loop, and `evaluate` for one pass over eval data.

The loop checks the config against the data and devices first (`jaxres.train.checks`), resumes
from the latest checkpoint in `workdir/checkpoints` when there is one, feeds the data from the step
it stopped at (batch i is a function of the seed and i; the pipeline skips the consumed examples
before decoding them), evaluates every
`eval_every_steps`, checkpoints every `checkpoint.every_steps` (asynchronously), stops cleanly on
SIGTERM after saving, and stops on a non-finite loss without saving the bad state.

A run folder takes one training at a time (`jaxres.train.run.lock_run`). A damaged newest
checkpoint is moved aside and named, and the run resumes from the newest one that reads; rows of
`metrics.jsonl` after the resumed step are dropped, since those steps run (and log) again. The
files the pipeline skipped (`jaxres.data.skips.SKIPPED`, summed over hosts) are counted in every
logged row (`data/skipped_total`, `data/skipped_<reason>`) and in the summary (`skipped`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import time
from typing import Any, Callable, Iterable, Iterator, Optional

import jax
import numpy as np

from jaxres.data.skips import SKIPPED, as_metrics
from jaxres.train.build import build_engine
from jaxres.train.checkpoint import Checkpointer
from jaxres.train.checks import check_config
from jaxres.train.compile_cache import enable_compilation_cache
from jaxres.train.distributed import skips_over_hosts
from jaxres.train.init_from import start_from
from jaxres.train.param_groups import ParamGroups
from jaxres.train.precise_bn import precise_bn_hook
from jaxres.train.preemption import StopRequest
from jaxres.train.run import lock_run, save_config
from jaxres.train.writers import MetricWriter, flat_hparams, plot_curves

log = logging.getLogger("jaxres.train")

TrainData = Callable[[int], Iterable[Any]]  # start_step -> batches from that step on
EvalData = Callable[[], Iterable[Any]]  # -> one pass over the eval set


class NonFiniteLossError(FloatingPointError):
  """Raised when the training loss becomes NaN or infinite."""


def pipeline_data(config, engine, info=None) -> tuple[TrainData, EvalData]:
  """Train and eval batches from the `jaxres.data.pipeline` of `config.data`.

  Train batches are resumable: the iterator for `start_step` yields what an uninterrupted run
  would have seen from that step on, skipping the consumed examples before they are decoded.
  The eval pipeline is built at the first evaluation and iterated again at each later one.
  `info` is the run's listing (`check_data`); both pipelines read their videos from it.
  """
  from jaxres.data import pipeline  # the tf.data pipeline is only needed when no data is given

  sharding = getattr(engine, "batch_sharding", None)
  built: list[EvalData] = []

  def train(start_step: int):
    return pipeline.create_iterator(
      config.data,
      "train",
      global_batch_size=config.global_batch_size,
      sharding=sharding,
      seed=config.seed,
      start_step=start_step,
      info=info,
    )

  def evaluate():
    if not built:
      built.append(
        pipeline.eval_data(
          config.data,
          global_batch_size=config.global_batch_size,
          sharding=sharding,
          seed=config.seed,
          info=info,
        )
      )
    return built[0]()

  return train, evaluate


def check_data(config, engine, task, *, uses_data_config: bool = True):
  """`jaxres.train.checks.check_config` against the devices and, when `config.data` feeds the
  run, against what the data holds (the demo's data are written first); returns the data's
  `DatasetInfo`, the run's one listing of it (None without one)."""
  info = None
  if uses_data_config and not config.synthetic_data:
    from jaxres.data import catalog

    catalog.ensure_demo_data(config.data)
    info = catalog.dataset_info(config.data)
  check_config(
    config,
    task,
    info=info,
    uses_data_config=uses_data_config,
    num_devices=getattr(engine, "num_devices", 1),
    num_processes=jax.process_count(),
  )
  return info


def model_input_shape(task, batch) -> tuple[int, ...]:
  """The shape the model is called on for `batch` (after the task's `prepare`), without computing it."""
  return tuple(jax.eval_shape(lambda b: task.model_input(task.prepare(b, None)), batch).shape)


def _close(batches) -> None:
  """Stops an endless pipeline's decoding now: left to interpreter exit it hangs the process
  (`jaxres.data.pipeline.BatchIterator`)."""
  close = getattr(batches, "close", None)
  if close is not None:
    close()


def synthetic_data(config) -> tuple[TrainData, EvalData]:
  """`jaxres.train.synthetic` batches shaped by `config.data` (classification only)."""
  from jaxres import models
  from jaxres.train.synthetic import synthetic_batches

  d = config.data
  frames = (d.num_frames,) if models.spec(config.model.name).input_rank == 5 else ()
  shape = (config.global_batch_size, *frames, d.crop_size, d.crop_size, 3)
  classes = config.model.num_classes
  eval_batches = 2 if config.eval_steps < 0 else config.eval_steps
  return (
    lambda start: synthetic_batches(shape, classes, seed=config.seed, start_step=start),
    lambda: synthetic_batches(
      shape, classes, seed=config.seed + 1, num_batches=eval_batches, eval=True
    ),
  )


def evaluate(
  engine,
  task,
  state,
  batches: Iterable[Any],
  *,
  max_batches: int = -1,
  record: Optional[dict] = None,
) -> dict[str, float]:
  """One pass of `engine.eval_step` over `batches`, reduced by `task.aggregate`.

  Args:
    engine: a `JitEngine` or `PmapEngine`.
    task: the task.
    state: the engine-layout state.
    batches: eval batches (`"mask"` marks padding).
    max_batches: stop after this many (-1: all).
    record: if given, receives `"values"` (the per-example eval values, on the host) and
      `"first_batch"` (for pictures of the evaluation).

  Returns:
    The task's aggregate metrics (for classification `accuracy`, `loss`, `video_accuracy`).

  Example:
    >>> metrics = evaluate(engine, task, state, eval_data())
  """
  values = []
  for i, batch in enumerate(batches):
    if 0 <= max_batches <= i:
      break
    if record is not None and i == 0:
      record["first_batch"] = batch
    values.append(jax.tree.map(np.asarray, engine.eval_step(state, engine.put_batch(batch))))
  if record is not None:
    record["values"] = values
  return task.aggregate(values)


class _Progress:
  """tqdm bar (process 0) with loss, accuracy, clips/s and ETA; silent when disabled."""

  def __init__(self, enabled: bool, start: int, total: int, batch_size: int):
    self.bar = None
    self.batch_size = batch_size
    if enabled and jax.process_index() == 0:
      from tqdm import tqdm

      self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

  def update(self, metrics: dict[str, float], clips_per_s: float):
    if self.bar is None:
      return
    self.bar.update(1)
    post = {k: f"{metrics[k]:.3f}" for k in ("loss", "accuracy") if k in metrics}
    post["clips/s"] = f"{clips_per_s:.1f}"
    self.bar.set_postfix(post, refresh=False)

  def write(self, text: str):
    if self.bar is not None:
      self.bar.write(text)
    elif jax.process_index() == 0:
      print(text, flush=True)

  def close(self):
    if self.bar is not None:
      self.bar.close()


class _Profile:
  """A `jax.profiler` trace of train steps `first`..`last` (`config.profile_steps`) into `folder`
  (`plugins/profile/<run>/*.xplane.pb`, which TensorBoard's profile plugin opens)."""

  def __init__(self, steps, folder: str):
    steps = tuple(steps)
    self.first, self.last = (steps[0], steps[-1]) if steps else (None, None)
    self.folder, self.tracing = folder, False

  def before(self, step: int):
    if step == self.first:
      jax.profiler.start_trace(self.folder)
      self.tracing = True

  def after(self, step: int, progress: "_Progress"):
    if self.tracing and step >= self.last:  # the step's metrics were read: its work is done
      self.stop()
      progress.write(
        f"Profiled steps {self.first}-{self.last} into {self.folder} "
        f"(tensorboard --logdir {self.folder})."
      )

  def stop(self):
    if self.tracing:
      self.tracing = False
      jax.profiler.stop_trace()


def train_and_evaluate(
  config,
  workdir: str,
  *,
  train_data: Optional[TrainData] = None,
  eval_data: Optional[EvalData] = None,
  stop: Optional[StopRequest] = None,
) -> dict[str, Any]:
  """Trains `config` in `workdir`, resuming from its latest checkpoint, evaluating as configured.

  Args:
    config: a training config (`jaxres.train.load_config`).
    workdir: the run folder: `config.json`, `checkpoints/`, `metrics.jsonl`, `tensorboard/`,
      `curves.png`, `profile/` (with `config.profile_steps`).
    train_data: `start_step -> iterable of batches` (global batches, numpy or jax.Array); default:
      the tf.data pipeline of `config.data`.
    eval_data: `() -> iterable of eval batches`; default: the pipeline's eval split.
    stop: a `StopRequest` to use (default: one that catches SIGTERM).

  Returns:
    A summary: `step`, `stopped_early`, `already_finished` (the run had reached
    `num_train_steps` before this call, so nothing ran), `wall_time_s`, `train` (last logged train
    metrics), `eval` (last evaluation) and `skipped` (files skipped per reason).

  Raises:
    ValueError: the config does not fit the data or devices (`jaxres.train.checks`), or the
      checkpoints in `workdir` (`config.json` is then left as it was).
    RunLockedError: another process is training in `workdir`.
    NonFiniteLossError: the loss became NaN/inf; the last good checkpoint is left as it was.

  Example:
    >>> summary = train_and_evaluate(load_config("demo"), "/tmp/demo")
    >>> summary["eval"]["accuracy"]
  """
  started = time.time()
  enable_compilation_cache(config.compilation_cache_dir)
  engine, model, task = build_engine(config)
  info = check_data(config, engine, task, uses_data_config=train_data is None or eval_data is None)
  os.makedirs(workdir, exist_ok=True)
  if train_data is None or eval_data is None:
    make = synthetic_data(config) if config.synthetic_data else pipeline_data(config, engine, info)
    train_data, eval_data = train_data or make[0], eval_data or make[1]
  # Process 0 writes the run folder's files, so its lock covers the run on every host.
  with lock_run(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
    summary = _train(
      config,
      workdir,
      engine,
      model,
      task,
      train_data,
      eval_data,
      stop,
      class_names=info.class_names if info is not None else None,
    )
  summary["wall_time_s"] = time.time() - started
  return summary


def _train(
  config,
  workdir,
  engine,
  model,
  task,
  train_data: TrainData,
  eval_data: EvalData,
  stop: Optional[StopRequest],
  class_names=None,
) -> dict[str, Any]:
  """`train_and_evaluate` once the config is checked and the run folder locked."""
  c = config.checkpoint
  ckpt = Checkpointer(
    os.path.join(workdir, "checkpoints"),
    keep=c.keep,
    keep_best=c.keep_best,
    best_metric=c.best_metric,
    best_mode=c.best_mode,
    async_save=c.async_save,
  )
  writer = MetricWriter(workdir, tensorboard=config.tensorboard)
  total = int(config.num_train_steps)

  start_step = ckpt.latest_step() or 0
  damaged: list[str] = []
  started_from = None
  batches: Iterator[Any] = iter(train_data(start_step))
  try:
    first = next(batches)
    input_shape = model_input_shape(task, first)
    if start_step:
      step, restored = ckpt.restore_newest_intact(
        engine.abstract_state(input_shape), report=damaged.append
      )
      state = engine.from_global(restored)
      if step != start_step:  # an older checkpoint: the data restarts where its state is
        _close(batches)
        start_step = step
        batches = iter(train_data(start_step))
        first = next(batches)
      log.info("Resumed from step %d in %s.", start_step, ckpt.directory)
    else:
      state = engine.init(jax.random.fold_in(jax.random.key(config.seed), 0), input_shape)
      if config.init_from:  # a first start only: a resumed run continues from its checkpoints
        state, started_from = start_from(
          engine.to_global(state), config.init_from, config.model, tuple(config.init_fresh)
        )
        state = engine.from_global(state)
  except BaseException:  # e.g. a checkpoint that does not fit: exit with the error, not hang
    _close(batches)
    ckpt.close()
    raise
  if jax.process_index() == 0:  # only once the checkpoints fit it: what `jaxres upscale` / `eval`
    save_config(config, workdir)  # rebuild the model from, so it must match them
    # `jaxres predict` names the classes with them; an SR run's one class folder names nothing.
    if class_names and task.name == "classification":
      from jaxres.data.sources import write_class_names

      write_class_names(workdir, class_names)
  writer.truncate_after(start_step)  # the steps after it run (and log) again
  pictures = None
  if config.tensorboard and writer.enabled:  # hparams, confusion matrix / SR crops at each eval
    from jaxres.train.pictures import EvalPictures

    writer.write_hparams(
      flat_hparams(config), text=f"```\n{config.to_json_best_effort(indent=2)}\n```"
    )
    pictures = EvalPictures(task, model, class_names=class_names)
  step_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  precise_bn = None
  if config.precise_bn_batches > 0:
    groups = ParamGroups.from_config(config.optimizer)
    precise_bn = precise_bn_hook(
      engine,
      model,
      task,
      train_data,
      config.precise_bn_batches,
      keep_statistics=groups.keep_frozen_statistics if groups.active else None,
    )

  progress = _Progress(config.progress_bar, start_step, total, config.global_batch_size)
  for line in damaged:
    progress.write(line)
  if start_step:
    progress.write(f"Resumed from the checkpoint of step {start_step}.")
  for line in (
    started_from,
    ParamGroups.from_config(config.optimizer).describe(engine.to_global(state).params),
  ):
    if line:
      progress.write(line)
  summary: dict[str, Any] = {
    "train": {},
    "eval": {},
    "stopped_early": False,
    "already_finished": start_step >= total,
    "init_from": config.init_from,
  }
  window: list[dict[str, float]] = []
  window_start = time.time()
  step = start_step
  stop = stop or StopRequest()
  profile = _Profile(config.profile_steps, os.path.join(workdir, "profile"))
  try:
    with stop:
      for step in range(start_step + 1, total + 1):
        batch = first if first is not None else next(batches)
        first = None
        profile.before(step)
        t0 = time.time()
        state, metrics = engine.train_step(state, engine.put_batch(batch), step_rng)
        metrics = {k: float(v) for k, v in metrics.items()}
        profile.after(step, progress)
        if not math.isfinite(metrics["loss"]):
          ckpt.wait()
          last = ckpt.latest_step()
          raise NonFiniteLossError(
            f"Training loss is {metrics['loss']} at step {step}; stopping. The last good checkpoint "
            f"is step {last} in {ckpt.directory}."
            if last is not None
            else f"Training loss is {metrics['loss']} at step {step}; stopping (no checkpoint yet)."
          )
        window.append(metrics)
        progress.update(metrics, config.global_batch_size / max(time.time() - t0, 1e-9))

        if step % config.log_every_steps == 0 or step == total:
          elapsed = time.time() - window_start
          means = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
          means["clips_per_second"] = len(window) * config.global_batch_size / max(elapsed, 1e-9)
          means.update(as_metrics(skips_over_hosts(SKIPPED)))
          writer.write(step, means, split="train")
          summary["train"] = means
          window, window_start = [], time.time()

        eval_metrics = None
        if step == total or (config.eval_every_steps and step % config.eval_every_steps == 0):
          if precise_bn is not None:  # the statistics evaluated, saved and trained on from here
            state, used = precise_bn(state, step)
            log.info("Precise BatchNorm statistics from %d batches at step %d.", used, step)
          record = {} if pictures is not None else None
          eval_metrics = evaluate(
            engine, task, state, eval_data(), max_batches=config.eval_steps, record=record
          )
          writer.write(
            step, {**eval_metrics, **as_metrics(skips_over_hosts(SKIPPED))}, split="eval"
          )
          if pictures is not None:
            writer.write_images(
              step,
              pictures(
                record.get("values", []),
                record.get("first_batch"),
                engine.to_global(state).variables,
              ),
              split="eval",
            )
          summary["eval"] = eval_metrics
          progress.write(
            f"step {step}: eval "
            + ", ".join(f"{k} {v:.4f}" for k, v in eval_metrics.items() if not k.startswith("num_"))
          )

        stopping = stop.requested()
        if (
          step == total
          or stopping
          or eval_metrics is not None
          or (c.every_steps and step % c.every_steps == 0)
        ):
          ckpt.save(step, engine.to_global(state), metrics=eval_metrics)
        if stopping:
          progress.write(f"Stop requested: saved the checkpoint of step {step}, exiting.")
          summary["stopped_early"] = True
          break
  finally:
    profile.stop()
    _close(batches)
    progress.close()
    ckpt.close()
    writer.close()

  summary["step"] = step
  summary["skipped"] = skips_over_hosts(SKIPPED)
  if config.plot and jax.process_index() == 0 and os.path.exists(writer.path):
    summary["plot"] = plot_curves(
      writer.path, os.path.join(workdir, "curves.png"), title=f"{config.model.name} ({workdir})"
    )
  return summary


def evaluate_checkpoint(
  config, workdir: str, *, step: Optional[int] = None, eval_data: Optional[EvalData] = None
) -> dict[str, Any]:
  """Evaluates a checkpoint of `workdir` (the latest, or `step`) on the eval data of `config`.

  Args:
    config: the run's config (the model and data must match the checkpoint).
    workdir: the run folder.
    step: the checkpoint step (default: latest).
    eval_data: `() -> iterable of eval batches` (default: the pipeline's eval split).

  Returns:
    The task's aggregate metrics plus `step`.

  Raises:
    FileNotFoundError: no checkpoint (of `step`).
    CheckpointError: the checkpoint cannot be read or does not fit the config.

  Example:
    >>> evaluate_checkpoint(load_config("demo"), "runs/demo")["accuracy"]
  """
  enable_compilation_cache(config.compilation_cache_dir)
  engine, _, task = build_engine(config)
  info = check_data(config, engine, task, uses_data_config=eval_data is None)
  if eval_data is None:
    _, eval_data = (
      synthetic_data(config) if config.synthetic_data else pipeline_data(config, engine, info)
    )
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):  # not created by looking for it
    raise FileNotFoundError(f"No checkpoints in {workdir}: is it the --workdir of `jaxres train`?")
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
  batches = None
  try:
    steps = ckpt.all_steps()
    step = ckpt.latest_step() if step is None else step
    if step not in steps:  # before any pipeline starts
      raise FileNotFoundError(
        f"No checkpoint of step {step} in {ckpt.directory}; its steps are "
        f"{', '.join(map(str, steps))}."
        if steps
        else f"No checkpoint in {ckpt.directory}."
      )
    batches = iter(eval_data())
    first = next(batches)
    abstract = engine.abstract_state(model_input_shape(task, first))
    state = engine.from_global(ckpt.restore(abstract, step))
    metrics = evaluate(
      engine, task, state, itertools.chain([first], batches), max_batches=config.eval_steps
    )
  finally:
    _close(batches)
    ckpt.close()
  return {"step": step, **metrics}
