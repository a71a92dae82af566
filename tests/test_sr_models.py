"""SR models: shapes and parameter counts for every model and scale, pixel shuffle, residual form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_init import init_variables

from jaxres import models
from jaxres.models import sr

SR_MODELS = [n for n in models.names() if models.spec(n).task == "super_resolution"]

# EDSR and BasicVSR figures are those of BasicSR 1.4.2 (x4 EDSR baseline 1,517,571; full x4 43.1M;
# BasicVSR 6,291,311; BasicVSR++ 7,322,927; IconVSR 8,694,991); the bicubic-skip EDSR has the same
# parameters. BasicVSR, BasicVSR++ and IconVSR are x4 only.
PARAMS = {
  "edsr_baseline": {2: 1_369_859, 3: 1_554_499, 4: 1_517_571},
  "edsr": {2: 40_729_603, 3: 43_680_003, 4: 43_089_923},
  "edsr_bicubic_baseline": {2: 1_369_859, 3: 1_554_499, 4: 1_517_571},
  "edsr_bicubic": {2: 40_729_603, 3: 43_680_003, 4: 43_089_923},
  "vdsr": {2: 668_227, 3: 668_227, 4: 668_227},
  "recurrent_vsr": {2: 4_744_967, 3: 4_929_607, 4: 4_892_679},
  "basicvsr": {4: 6_291_311},
  "basicvsrpp": {4: 7_322_927},
  "iconvsr": {4: 8_694_991},
  "edsr_bicubic_tiny": {2: 21_763, 3: 33_363, 4: 31_043},
  "vdsr_tiny": {2: 5_523, 3: 5_523, 4: 5_523},
  "recurrent_vsr_tiny": {2: 77_271, 3: 88_871, 4: 86_551},
}


def _input_shape(name, h=10, w=7, batch=2, frames=2):
  if name == "iconvsr":
    frames = 5  # EDVR's window around a keyframe
  return (batch, frames, h, w, 3) if models.spec(name).input_rank == 5 else (batch, h, w, 3)


def test_every_sr_model_has_counts():
  assert sorted(PARAMS) == sorted(SR_MODELS)


# IconVSR traces 300 residual blocks and EDVR twice (init and apply): 10 s, so in the slow tier.
@pytest.mark.parametrize(
  "name,scale",
  [
    pytest.param(n, s, marks=[pytest.mark.slow] if n == "iconvsr" else [])
    for n in sorted(PARAMS)
    for s in PARAMS[n]
  ],
)
def test_shapes_and_parameter_counts(name, scale):
  model = models.get(name, scale=scale)
  shape = _input_shape(name)
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  assert out.shape == shape[:-3] + (shape[-3] * scale, shape[-2] * scale, 3)
  assert out.dtype == jnp.float32
  assert models.count_params(variables["params"]) == PARAMS[name][scale]


@pytest.mark.parametrize("name", [n for n in SR_MODELS if n.endswith("_tiny")])
def test_untrained_model_returns_bicubic_and_trains_towards_residual(name):
  """The last conv starts at zero: output == bicubic upsampling; gradients reach every layer later."""
  model = models.get(name, scale=2)
  x = jax.random.uniform(jax.random.key(1), _input_shape(name, 8, 8, batch=1, frames=2))
  variables = init_variables(model, x, train=False)
  y = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
  np.testing.assert_allclose(y, sr.bicubic_upsample(x, 2), atol=1e-6)
  # Zero-initialised last layers (the tail, the flow head) let gradients through after a few steps.
  loss = lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, x, train=True) - 0.5))
  grad = jax.jit(jax.grad(loss))
  params = variables["params"]
  for _ in range(3):
    g = grad(params)
    params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, g)
  norms = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda a: float(jnp.abs(a).sum()), g))
  assert all(n > 0 for n in norms)


def test_image_models_run_per_frame_on_clips():
  model = models.get("edsr_bicubic_tiny", scale=3)
  clip = jax.random.uniform(jax.random.key(2), (2, 3, 6, 5, 3))
  variables = init_variables(model, clip[:, 0], train=False)
  variables = jax.tree_util.tree_map(lambda p: p + 0.05, variables)
  apply = jax.jit(lambda x: model.apply(variables, x, train=False))
  out = apply(clip)
  per_frame = jnp.stack([apply(clip[:, t]) for t in range(3)], 1)
  np.testing.assert_allclose(out, per_frame, rtol=1e-5, atol=1e-5)  # outputs ~6e4


def test_recurrent_model_uses_neighbouring_frames():
  model = models.get("recurrent_vsr_tiny", scale=2, align="none")
  clip = jax.random.uniform(jax.random.key(3), (1, 4, 6, 6, 3))
  variables = init_variables(model, clip, train=False)
  variables = jax.tree_util.tree_map(lambda p: p + 0.02, variables)
  apply = jax.jit(lambda x: model.apply(variables, x, train=False))
  out = apply(clip)
  out2 = apply(clip.at[:, 3].set(0.0))
  assert float(jnp.abs(out2[:, 0] - out[:, 0]).max()) > 1e-4  # frame 3 reaches frame 0 (backward)


def test_pixel_shuffle_matches_torch():
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(0).standard_normal((2, 5, 4, 3 * 9)).astype(np.float32)
  ours = sr.pixel_shuffle(jnp.asarray(x), 3)
  theirs = torch.nn.functional.pixel_shuffle(torch.from_numpy(x).permute(0, 3, 1, 2), 3)
  np.testing.assert_array_equal(ours, theirs.permute(0, 2, 3, 1).numpy())


def test_flow_warp_shifts_by_integer_flow_and_is_identity_at_zero():
  x = jax.random.normal(jax.random.key(4), (1, 5, 6, 2))
  np.testing.assert_allclose(sr.flow_warp(x, jnp.zeros((1, 5, 6, 2))), x, atol=1e-6)
  flow = jnp.zeros((1, 5, 6, 2)).at[..., 0].set(1.0)  # sample one pixel to the right
  np.testing.assert_allclose(sr.flow_warp(x, flow)[:, :, :-1], x[:, :, 1:], atol=1e-6)


def test_bad_scale_and_rank_are_clear_errors():
  with pytest.raises(ValueError, match="scale"):
    models.get("edsr_bicubic_tiny", scale=5).init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
  with pytest.raises(ValueError, match="x4 only"):
    jax.eval_shape(
      models.get("basicvsr", scale=2).init, jax.random.key(0), jnp.zeros((1, 2, 8, 8, 3))
    )
  with pytest.raises(ValueError, match="clips"):
    models.get("recurrent_vsr_tiny").init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))


def test_bfloat16_compute():
  model = models.get("edsr_bicubic_tiny", scale=2, dtype=jnp.bfloat16)
  x = jnp.ones((1, 4, 4, 3)) * 0.5
  variables = model.init(jax.random.key(0), x, train=False)
  assert jax.tree_util.tree_leaves(variables)[0].dtype == jnp.float32
  assert model.apply(variables, x, train=False).dtype == jnp.float32


def test_recurrent_unrolled_equals_scan():
  clip = jax.random.uniform(jax.random.key(5), (1, 3, 6, 6, 3))
  unrolled = models.get("recurrent_vsr_tiny", scale=2)
  scanned = models.get("recurrent_vsr_tiny", scale=2, unroll=False)
  variables = init_variables(unrolled, clip, train=False)
  assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(
    jax.eval_shape(lambda: scanned.init(jax.random.key(0), clip, train=False))
  )
  variables = jax.tree_util.tree_map(lambda p: p + 0.02, variables)
  run = lambda m: jax.jit(lambda v, x: m.apply(v, x, train=False))(variables, clip)
  np.testing.assert_allclose(run(unrolled), run(scanned), atol=1e-5)


def _count_primitives(fn, *args, name):
  return str(jax.make_jaxpr(fn)(*args)).count(f" {name}[")


@pytest.mark.parametrize(
  "name, kwargs, shape",
  [
    ("edsr_bicubic_tiny", {"scale": 2}, (1, 2, 12, 10, 3)),
    ("recurrent_vsr_tiny", {"scale": 2}, (1, 3, 12, 10, 3)),  # dilated flow convs: XLA's
    *(
      pytest.param(name, {"features": 8, "num_blocks": 1}, shape, marks=pytest.mark.slow)
      for name, shape in (
        ("basicvsr", (1, 2, 64, 64, 3)),
        ("iconvsr", (1, 5, 64, 64, 3)),
        ("basicvsrpp", (1, 2, 64, 64, 3)),
      )
    ),
  ],
)
def test_sr_models_pin_their_convolutions_lowering(name, kwargs, shape):
  # "auto" runs 3x3 convolutions as Winograd dots on CPU; "native" (what `export` asks for) keeps
  # every one on XLA's convolution; both compute the same function.
  clip = jax.random.uniform(jax.random.key(4), shape)
  auto = models.get(name, **kwargs)
  native = models.get(name, conv_lowering="native", **kwargs)
  variables = init_variables(auto, clip, train=False)
  variables = jax.tree_util.tree_map(lambda p: p + 0.01, variables)
  run = {m: jax.jit(lambda x, m=m: m.apply(variables, x, train=False)) for m in (auto, native)}
  counts = {m: _count_primitives(run[m], clip, name="conv_general_dilated") for m in (auto, native)}
  assert counts[native] > counts[auto], counts
  np.testing.assert_allclose(run[auto](clip), run[native](clip), rtol=1e-4, atol=1e-4)
