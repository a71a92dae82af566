"""TSM-R50: the temporal shift by hand, the whole network against a torch TSM built here from
torchvision's ResNet-50 and MMAction2's shift (MMAction2 itself is not a dependency), and
MMAction2's key layout."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres import models
from jaxres.models.shift import temporal_shift


def _numpy_shift(x, segments, shift_div):
  """The shift written out with loops: [B*T, ..., C] frames, clip-major."""
  out = np.zeros_like(x)
  fold = x.shape[-1] // shift_div
  for n in range(x.shape[0]):
    t = n % segments
    out[n, ..., 2 * fold :] = x[n, ..., 2 * fold :]
    if t + 1 < segments:
      out[n, ..., :fold] = x[n + 1, ..., :fold]  # from the next frame
    if t > 0:
      out[n, ..., fold : 2 * fold] = x[n - 1, ..., fold : 2 * fold]  # from the previous frame
  return out


@pytest.mark.parametrize("segments,channels,shift_div", [(4, 16, 8), (3, 10, 4), (1, 8, 8)])
def test_temporal_shift_matches_the_shift_written_out(segments, channels, shift_div):
  x = np.random.default_rng(0).normal(size=(2 * segments, 3, 2, channels)).astype(np.float32)
  np.testing.assert_array_equal(
    temporal_shift(jnp.asarray(x), segments, shift_div), _numpy_shift(x, segments, shift_div)
  )


def test_temporal_shift_refuses_frames_that_are_not_whole_clips():
  with pytest.raises(ValueError, match="clips of 4"):
    temporal_shift(jnp.zeros((6, 2, 2, 8)), 4)


def test_tsm_r50_has_resnet50s_parameters():
  model = models.get("tsm_r50", num_classes=400)
  spec = models.spec("tsm_r50")
  assert (spec.num_frames, spec.crop_size) == (8, 224)
  variables = jax.eval_shape(
    lambda x: model.init(jax.random.key(0), x, train=False),
    jax.ShapeDtypeStruct((1, 8, 224, 224, 3), jnp.float32),
  )
  assert models.count_params(variables["params"]) == 24_327_632


# The torch reference: torchvision's ResNet-50, every Bottleneck's conv1 wrapped in MMAction2's
# TemporalShift (its `shift`, copied in spirit: view as clips, move fold channels each way, zeros at
# the ends), and TSMHead (average pool, dropout, fc, average over the segments).
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torch_reference import channels_last, randomise_batchnorm, rel_err  # noqa: E402


class TorchShift(torch.nn.Module):
  def __init__(self, net, num_segments, shift_div=8):
    super().__init__()
    self.net, self.num_segments, self.shift_div = net, num_segments, shift_div

  def forward(self, x):
    n, c, h, w = x.shape
    x = x.view(-1, self.num_segments, c, h * w)
    fold = c // self.shift_div
    left = torch.cat((x[:, 1:, :fold], torch.zeros_like(x[:, :1, :fold])), 1)
    mid = torch.cat((torch.zeros_like(x[:, :1, fold : 2 * fold]), x[:, :-1, fold : 2 * fold]), 1)
    return self.net(torch.cat((left, mid, x[:, :, 2 * fold :]), 2).view(n, c, h, w))


class TorchTSM(torch.nn.Module):
  def __init__(self, num_segments, num_classes):
    super().__init__()
    self.num_segments = num_segments
    resnet = torchvision.models.resnet50(num_classes=num_classes)
    for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
      for block in layer:
        block.conv1 = TorchShift(block.conv1, num_segments)
    self.resnet = resnet

  def forward(self, x):  # x [B, C, T, H, W]
    b, c, t, h, w = x.shape
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)
    r = self.resnet
    y = r.maxpool(r.relu(r.bn1(r.conv1(frames))))
    y = r.layer4(r.layer3(r.layer2(r.layer1(y))))
    logits = r.fc(torch.flatten(r.avgpool(y), 1))  # dropout 0 here: train mode is deterministic
    return logits.view(b, t, -1).mean(1)


def _mmaction2_state_dict(torch_model):
  """The reference's weights under MMAction2's TSM keys (jaxres.convert.mmaction2's layout)."""
  out = {}
  for key, value in torch_model.resnet.state_dict().items():
    new = key
    for old, mm in (
      (r"^conv1\.", "conv1.conv."),
      (r"^bn1\.", "conv1.bn."),
      (r"\.conv1\.net\.", ".conv1.conv.net."),
      (r"\.conv([23])\.", r".conv\1.conv."),
      (r"\.bn(\d)\.", r".conv\1.bn."),
      (r"\.downsample\.0\.", ".downsample.conv."),
      (r"\.downsample\.1\.", ".downsample.bn."),
    ):
      new = re.sub(old, mm, new)
    out["cls_head.fc_cls." + key[3:] if key.startswith("fc.") else "backbone." + new] = value
  return out


@pytest.fixture(scope="module")
def reference():
  torch.manual_seed(0)
  model = randomise_batchnorm(TorchTSM(num_segments=4, num_classes=6))
  with torch.no_grad():
    model.resnet.fc.weight.normal_(0, 0.5)
  return model


def test_mmaction2_layout_converts_and_names_bad_keys(reference):
  from jaxres.convert import ConversionError, from_mmaction2_tsm

  state_dict = _mmaction2_state_dict(reference)
  assert "backbone.layer1.0.conv1.conv.net.weight" in state_dict
  variables = from_mmaction2_tsm({"state_dict": state_dict})
  np.testing.assert_array_equal(
    variables["params"]["layer3_2"]["conv1"]["kernel"][0, 0],
    state_dict["backbone.layer3.2.conv1.conv.net.weight"][:, :, 0, 0].T,
  )
  bad = dict(state_dict)
  bad["cls_head.fc_cls.bias"] = torch.zeros(5)
  del bad["backbone.layer2.0.downsample.bn.running_var"]
  with pytest.raises(ConversionError) as error:
    from_mmaction2_tsm(bad)
  message = str(error.value)
  assert "cls_head.fc_cls.bias (5,) -> params/fc/bias (6,)" in message
  assert "batch_stats/layer2_0/downsample/bn/var" in message and "tsm_r50" in message
  with pytest.raises(ConversionError, match="backbone.layer9.0.conv1.weight"):
    from_mmaction2_tsm({**state_dict, "backbone.layer9.0.conv1.weight": torch.zeros(1)})


@pytest.mark.slow
def test_tsm_r50_matches_the_torch_reference_in_eval_and_train_mode(reference):
  from jaxres.convert import from_mmaction2_tsm

  x = torch.randn(2, 3, 4, 40, 48, generator=torch.Generator().manual_seed(1))
  variables = from_mmaction2_tsm(_mmaction2_state_dict(reference))
  with torch.no_grad():
    expected_eval = reference.eval()(x).numpy()
    expected_train = reference.train()(x).numpy()  # moves the reference's running statistics
  model = models.get("tsm_r50", num_classes=6)

  @jax.jit
  def both_modes(variables, x):
    return (
      model.apply(variables, x, train=False),
      model.apply(variables, x, train=True, mutable=["batch_stats"])[0],
    )

  got_eval, got_train = both_modes(variables, channels_last(x))
  assert rel_err(got_eval, expected_eval) < 1e-4
  # ResNet-50 in train mode: see test_parity_torchvision (float32 rounding amplified by batch
  # statistics of few values).
  assert rel_err(got_train, expected_train) < 2e-4
  # Without the shift the reference is another function: jaxres matched the shifted one.
  for module in reference.modules():
    if isinstance(module, TorchShift):
      module.shift_div = 10**6  # no channel moves
  with torch.no_grad():
    unshifted = reference.eval()(x).numpy()
  for module in reference.modules():
    if isinstance(module, TorchShift):
      module.shift_div = 8
  assert rel_err(got_eval, unshifted) > 1e-2
