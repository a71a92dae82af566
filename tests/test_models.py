"""Model zoo: every registered classifier runs, counts match torchvision, dtypes and features work."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_init import init_variables

from jaxres import models

CLASSIFIERS = [n for n in models.names() if models.spec(n).task == "classification"]


def _tiny_input(name, batch=2):
  if models.spec(name).input_rank == 5:
    return jax.random.normal(jax.random.key(1), (batch, 4, 16, 16, 3))
  return jax.random.normal(jax.random.key(1), (batch, 32, 32, 3))


# The family of each classifier: its block kind and stem. The deeper variants of a family differ
# only in block counts, which test_every_classifier_traces_in_train_and_eval_mode covers; one model
# per family runs compiled (r3d_tiny in the fast tier).
FAMILY = {
  **dict.fromkeys(["r3d_tiny", "r3d_18", "r3d_34"], "r3d"),
  **dict.fromkeys(["mc3_18", "mc3_34"], "mc3"),
  **dict.fromkeys(["r2plus1d_18", "r2plus1d_34"], "r2plus1d"),
  **dict.fromkeys(["resnet18", "resnet34"], "basic"),
  **dict.fromkeys(["resnet50", "resnet101", "resnet152"], "bottleneck"),
  **dict.fromkeys(["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"], "cifar"),
  # tsm_r50 is the per-frame ResNet-50 with a temporal shift; test_tsm runs it compiled.
  **dict.fromkeys(["tsn_resnet18", "tsn_resnet50", "tsm_r50"], "per_frame"),
  **dict.fromkeys(["slow_r50", "c2d_r50", "i3d_r50"], "pytorchvideo_resnet"),
  **dict.fromkeys(["csn_r101", "ir_csn_152"], "pytorchvideo_csn"),
  **dict.fromkeys(["r2plus1d_r50"], "pytorchvideo_r2plus1d"),
  **dict.fromkeys(["slowfast_r50"], "slowfast"),
  **dict.fromkeys(["x3d_xs", "x3d_s", "x3d_m", "x3d_l"], "x3d"),
}
RUN = ["r3d_tiny"]
RUN_SLOW = ["resnet20", "mc3_18", "r2plus1d_18", "resnet18", "resnet50", "tsn_resnet18"]
# Families whose every model runs jitted in train and eval mode elsewhere (against the reference):
# test_parity_pytorchvideo, test_parity_x3d.
RUN_ELSEWHERE = {
  "pytorchvideo_resnet",
  "pytorchvideo_csn",
  "pytorchvideo_r2plus1d",
  "slowfast",
  "x3d",
}


def _both_modes(model):
  def run(variables, x):
    logits_eval = model.apply(variables, x, train=False)
    logits_train, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    return logits_eval, logits_train, updates["batch_stats"]

  return run


@pytest.mark.parametrize(
  "name", [n if n in RUN else pytest.param(n, marks=pytest.mark.slow) for n in CLASSIFIERS]
)
def test_every_classifier_traces_in_train_and_eval_mode(name):
  """Shapes and dtypes for the whole zoo, traced without compiling (`jax.eval_shape`); tracing the
  deep ones through the matmul lowerings takes seconds each, so they are in the slow tier."""
  model = models.get(name, num_classes=7)
  x = _tiny_input(name)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  logits_eval, logits_train, new_stats = jax.eval_shape(_both_modes(model), variables, x)
  assert logits_eval.shape == logits_train.shape == (2, 7)
  assert logits_eval.dtype == logits_train.dtype == jnp.float32
  assert jax.tree.map(lambda a: (a.shape, a.dtype), new_stats) == jax.tree.map(
    lambda a: (a.shape, a.dtype), variables["batch_stats"]
  )


def test_every_classifier_has_a_family_and_every_family_runs():
  assert sorted(FAMILY) == sorted(CLASSIFIERS)
  assert {FAMILY[n] for n in RUN + RUN_SLOW} | RUN_ELSEWHERE == set(FAMILY.values())


@pytest.mark.parametrize("name", RUN + [pytest.param(n, marks=pytest.mark.slow) for n in RUN_SLOW])
def test_one_classifier_per_family_runs_jitted_in_train_and_eval_mode(name):
  model = models.get(name, num_classes=7)
  x = _tiny_input(name)
  variables = init_variables(model, x, train=False)
  logits_eval, logits_train, new_stats = jax.jit(_both_modes(model))(variables, x)
  assert logits_eval.shape == logits_train.shape == (2, 7)
  assert np.isfinite(logits_eval).all() and np.isfinite(logits_train).all()
  # Train mode normalises with batch statistics (different logits) and moves the running ones.
  assert not np.allclose(logits_eval, logits_train)
  changed = jax.tree_util.tree_map(
    lambda a, b: not np.allclose(a, b), variables["batch_stats"], new_stats
  )
  assert all(jax.tree_util.tree_leaves(changed))


# torchvision's figures (its weights' metadata: num_params, and _ops in G multiply-adds); the CIFAR ones
# are He et al.'s "option A" networks.
PARAMS = [
  ("r3d_18", 400, (1, 16, 112, 112, 3), 33_371_472, 40_696_553_472),
  ("mc3_18", 400, (1, 16, 112, 112, 3), 11_695_440, 43_342_635_008),
  ("r2plus1d_18", 400, (1, 16, 112, 112, 3), 31_505_325, 40_519_080_960),
  ("resnet18", 1000, (1, 224, 224, 3), 11_689_512, 1_814_073_344),
  ("resnet50", 1000, (1, 224, 224, 3), 25_557_032, 4_089_184_256),
]


@pytest.mark.parametrize("name,num_classes,shape,params,macs", PARAMS)
def test_parameter_and_multiply_add_counts_match_torchvision(
  name, num_classes, shape, params, macs
):
  model = models.get(name, num_classes=num_classes)
  variables = jax.eval_shape(
    lambda x: model.init(jax.random.key(0), x, train=False),
    jax.ShapeDtypeStruct(shape, jnp.float32),
  )
  assert models.count_params(variables["params"]) == params
  assert models.count_macs(model, shape) == macs


@pytest.mark.parametrize(
  "name,low,high",
  [
    ("resnet20", 0.26e6, 0.28e6),
    ("resnet32", 0.45e6, 0.47e6),
    ("resnet44", 0.65e6, 0.67e6),
    ("resnet56", 0.84e6, 0.86e6),
    ("resnet110", 1.7e6, 1.75e6),
  ],
)
def test_cifar_resnets_have_the_papers_sizes(name, low, high):
  model = models.get(name)
  variables = jax.eval_shape(
    lambda x: model.init(jax.random.key(0), x, train=False),
    jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32),
  )
  assert low <= models.count_params(variables["params"]) <= high


def test_cifar_resnet_rejects_depths_that_are_not_6n_plus_2():
  with pytest.raises(ValueError, match="6n \\+ 2"):
    models.cifar_resnet(21)


def test_34_layer_video_variants_have_3_4_6_3_blocks():
  model = models.get("r2plus1d_34")
  variables = jax.eval_shape(
    lambda x: model.init(jax.random.key(0), x, train=False),
    jax.ShapeDtypeStruct((1, 4, 16, 16, 3), jnp.float32),
  )
  blocks = sorted(k for k in variables["params"] if k.startswith("layer"))
  assert [sum(b.startswith(f"layer{i}_") for b in blocks) for i in range(1, 5)] == [3, 4, 6, 3]


def test_unknown_model_name_lists_the_known_ones():
  with pytest.raises(KeyError, match="r3d_18"):
    models.get("r3d_81")


@pytest.mark.slow
def test_features_returns_every_stage_with_the_expected_shapes():
  model = models.get("r3d_tiny", num_classes=5)  # the stages of r3d_18 at widths 8 to 64
  x = jnp.ones((1, 8, 32, 32, 3))
  variables = init_variables(model, x, train=False)
  logits, feats = jax.jit(lambda v, x: models.features(model, v, x))(variables, x)
  assert set(feats) == {"stem", "stage1", "stage2", "stage3", "stage4", "pre_logits"}
  assert feats["stem"].shape == (1, 8, 16, 16, 8)
  assert feats["stage2"].shape == (1, 4, 8, 8, 16)
  assert feats["stage4"].shape == (1, 1, 2, 2, 64)
  # pre_logits feed the classifier: fc(pre_logits) reproduces the logits.
  fc = variables["params"]["fc"]
  np.testing.assert_allclose(
    feats["pre_logits"] @ fc["kernel"] + fc["bias"], logits, rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(
    logits, jax.jit(lambda v: model.apply(v, x, train=False))(variables), rtol=1e-6
  )


@pytest.mark.slow
def test_per_frame_model_averages_the_2d_model_over_frames():
  model = models.get("tsn_resnet18", num_classes=3)
  clip = jax.random.normal(jax.random.key(2), (2, 3, 32, 32, 3))
  variables = init_variables(model, clip, train=False)
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  per_frame = jnp.stack([apply(variables, clip[:, t]) for t in range(3)], 1)
  np.testing.assert_allclose(apply(variables, clip), per_frame.mean(1), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # compiles whole models
@pytest.mark.parametrize("name", ["r3d_tiny", "r2plus1d_18", "resnet50"])
def test_bfloat16_compute_keeps_float32_parameters_and_stays_close(name):
  x = _tiny_input(name)
  # The float32 model, input, variables and program are the family test's, so their compiled
  # programs come from the compilation cache.
  f32 = models.get(name, num_classes=7)
  bf16 = models.get(name, num_classes=7, dtype=jnp.bfloat16)
  variables = init_variables(f32, x, train=False)
  # Same parameter tree, still float32.
  bf16_vars = jax.eval_shape(lambda: bf16.init(jax.random.key(0), x, train=False))
  assert jax.tree_util.tree_structure(bf16_vars) == jax.tree_util.tree_structure(variables)
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(bf16_vars)} == {jnp.dtype("float32")}
  # Scale the classifier up so the comparison is about the network, not 0.01-sized logits.
  params = flax.core.unfreeze(variables["params"])
  params["fc"]["kernel"] = params["fc"]["kernel"] * 100
  variables = {**variables, "params": params}
  ref, _, _ = jax.jit(_both_modes(f32))(variables, x)
  out = jax.jit(lambda v: bf16.apply(v, x, train=False))(variables)
  assert out.dtype == jnp.bfloat16
  err = np.abs(np.asarray(out, np.float32) - ref).max() / np.abs(ref).max()
  assert err < 5e-2  # bf16 has an 8-bit mantissa; ~20 layers accumulate about 1e-2.
  _, stats = jax.jit(lambda v: bf16.apply(v, x, train=True, mutable=["batch_stats"]))(variables)
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(stats)} == {jnp.dtype("float32")}
