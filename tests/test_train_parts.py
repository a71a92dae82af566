"""Optimisers, schedules, weight-decay masks, mixup/cutmix, the classification task and bf16 steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxres.tasks.mixup import mix_clips
from jaxres.train import (
  TASKS,
  ClassificationTask,
  create_optimizer,
  create_schedule,
  default_config,
  make_task,
  weight_decay_mask,
)


def test_schedules():
  c = default_config()
  c.num_train_steps, c.optimizer.learning_rate = 100, 0.4
  c.schedule.warmup_steps = 10
  s = create_schedule(c)
  np.testing.assert_allclose(
    [float(s(0)), float(s(5)), float(s(10)), float(s(100))], [0.0, 0.2, 0.4, 0.0], atol=1e-6
  )
  np.testing.assert_allclose(float(s(55)), 0.2, atol=1e-6)  # halfway through the cosine
  c.schedule.name, c.schedule.boundaries, c.schedule.decay_factor = "step", (50, 80), 0.1
  s = create_schedule(c)
  np.testing.assert_allclose(
    [float(s(49)), float(s(50)), float(s(80))], [0.4, 0.04, 0.004], rtol=1e-5
  )
  c.optimizer.reference_batch_size, c.global_batch_size = 32, 64  # linear scaling rule
  assert float(create_schedule(c)(10)) == pytest.approx(0.8)


@pytest.mark.parametrize("name", ["sgd", "adamw", "lamb", "lars"])
def test_weight_decay_skips_batchnorm_and_biases(name):
  c = default_config()
  c.optimizer.name, c.optimizer.weight_decay, c.optimizer.learning_rate = name, 0.5, 0.1
  c.schedule.name = "constant"
  tx, _ = create_optimizer(c)
  params = {
    "conv": {"kernel": jnp.ones((3, 3, 2, 2))},
    "bn": {"scale": jnp.ones(2), "bias": jnp.ones(2)},
  }
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  assert float(jnp.abs(updates["conv"]["kernel"]).max()) > 0  # decayed
  assert float(jnp.abs(updates["bn"]["scale"]).max()) == 0  # not decayed
  assert float(jnp.abs(updates["bn"]["bias"]).max()) == 0
  assert weight_decay_mask(params) == {
    "conv": {"kernel": True},
    "bn": {"scale": False, "bias": False},
  }


def test_gradient_clipping():
  c = default_config()
  c.optimizer.grad_clip_norm, c.optimizer.weight_decay, c.optimizer.momentum = 1.0, 0.0, 0.0
  c.optimizer.learning_rate, c.schedule.name = 1.0, "constant"
  tx, _ = create_optimizer(c)
  params = {"w": jnp.zeros(4)}
  updates, _ = tx.update({"w": jnp.full(4, 10.0)}, tx.init(params), params)
  np.testing.assert_allclose(float(optax.tree.norm(updates)), 1.0, rtol=1e-6)


def test_mixup_and_cutmix_for_clips():
  video = jnp.stack([jnp.full((4, 8, 8, 3), float(i)) for i in range(6)])
  mixed, perm, lam = mix_clips(video, jax.random.key(0), mixup_alpha=0.4, cutmix_alpha=0.0)
  np.testing.assert_allclose(mixed, lam * video + (1 - lam) * video[perm], rtol=1e-6)
  mixed, perm, lam = mix_clips(video, jax.random.key(1), mixup_alpha=0.0, cutmix_alpha=1.0)
  own = np.isclose(np.asarray(mixed), np.asarray(video)).all(-1)  # [B, T, H, W]
  assert (own == own[:, :1]).all()  # the same box on every frame
  kept = own[:, 0].reshape(6, -1).mean(-1)
  moved = np.asarray(perm) != np.arange(6)
  np.testing.assert_allclose(kept[moved], float(lam), atol=1e-6)  # lam = area kept


def test_classification_task_loss_and_video_accuracy():
  task = make_task("classification", label_smoothing=0.1)
  assert set(TASKS) >= {"classification", "super_resolution"}
  logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [3.0, 0.0]])
  batch = {
    "video": jnp.zeros((4, 1, 2, 2, 3)),
    "label": jnp.array([0, 1, 1, 1]),
    "video_id": jnp.array([0, 0, 1, 1]),
    "mask": jnp.array([1.0, 1.0, 1.0, 0.0]),
  }
  loss, metrics = task.loss_and_metrics(logits, batch)
  targets = jax.nn.one_hot(batch["label"], 2) * 0.9 + 0.05
  expected = -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), -1))
  np.testing.assert_allclose(float(loss), float(expected), rtol=1e-6)
  assert float(metrics["accuracy"]) == 0.5
  values = dict(task.eval_metrics(logits, batch), weight=batch["mask"])
  out = task.aggregate([jax.tree.map(np.asarray, values)])
  assert out["num_clips"] == 3 and out["accuracy"] == pytest.approx(2 / 3)
  # Video 0: both clips say 0 (right); video 1: its one unmasked clip says 0 (wrong).
  assert out["video_accuracy"] == 0.5 and out["num_videos"] == 2


def test_mixup_targets_in_the_loss():
  task = ClassificationTask(mixup_alpha=0.2)
  labels = np.array([0, 1, 2, 3])
  # Clip i is all i, so a mixed clip shows its partner and weight: lam * i + (1 - lam) * perm[i].
  batch = {
    "video": jnp.stack([jnp.full((2, 4, 4, 3), float(i)) for i in range(4)]),
    "label": jnp.asarray(labels),
  }
  mixed = task.prepare(batch, jax.random.key(0))
  perm, lam = np.asarray(mixed["mix_perm"]), float(mixed["mix_lambda"])
  assert (perm != np.arange(4)).any() and 0.01 < lam < 0.99  # this key mixes for real
  np.testing.assert_allclose(
    mixed["video"][:, 0, 0, 0, 0], lam * np.arange(4) + (1 - lam) * perm, rtol=1e-6
  )
  np.testing.assert_array_equal(mixed["label"], labels)  # the labels stay; the targets mix
  # Logits that tell the targets apart: the loss is the cross-entropy with the mixed targets,
  # lam of each clip's own label and 1 - lam of its partner's, and not the unmixed one.
  logits = jax.random.normal(jax.random.key(1), (4, 4)) * 3
  targets = lam * np.eye(4)[labels] + (1 - lam) * np.eye(4)[labels[perm]]
  log_probs = np.asarray(jax.nn.log_softmax(logits), np.float64)
  expected = -np.mean(np.sum(targets * log_probs, -1))
  unmixed = -np.mean(log_probs[np.arange(4), labels])
  assert abs(expected - unmixed) > 0.1, (expected, unmixed)
  loss, _ = task.loss_and_metrics(logits, mixed)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_bf16_compute_keeps_float32_params_and_stats():
  from jaxres.train import build_engine, synthetic_batches

  c = default_config()
  c.model.num_classes, c.model.dtype, c.parallel.num_devices = 4, "bfloat16", 1
  engine, _, _ = build_engine(c)
  shape = (4, 2, 8, 8, 3)
  state = engine.init(jax.random.key(0), shape)
  state, metrics = engine.train_step(
    state, engine.put_batch(next(synthetic_batches(shape, 4))), jax.random.key(0)
  )
  dtypes = {
    x.dtype
    for x in jax.tree.leaves((state.params, state.batch_stats, state.opt_state))
    if jnp.issubdtype(x.dtype, jnp.floating)
  }
  assert dtypes == {jnp.dtype(jnp.float32)}
  assert np.isfinite(float(metrics["loss"]))
