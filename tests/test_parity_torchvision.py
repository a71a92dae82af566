"""Converted torchvision models give torchvision's numbers (skipped when torch is not installed)."""

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import jax  # noqa: E402  (after the skip: these tests need torch)
from torch_reference import channels_last, randomise_batchnorm, rel_err  # noqa: E402

from jaxres import models  # noqa: E402
from jaxres.convert import ConversionError, from_torchvision  # noqa: E402

CONSTRUCTORS = {
  "r3d_18": torchvision.models.video.r3d_18,
  "mc3_18": torchvision.models.video.mc3_18,
  "r2plus1d_18": torchvision.models.video.r2plus1d_18,
  "resnet18": torchvision.models.resnet18,
  "resnet50": torchvision.models.resnet50,
}


def _random_torch_model(arch, num_classes, seed=0):
  """A torchvision model with random weights and random BatchNorm statistics and affine terms."""
  torch.manual_seed(seed)
  model = randomise_batchnorm(CONSTRUCTORS[arch](num_classes=num_classes))
  with torch.no_grad():
    model.fc.weight.normal_(0, 0.5)  # logits of order 1, not 0.01
  return model


# (arch, torch input shape): 16x112x112 clips and an odd non-square size; ImageNet and odd images.
CASES = [
  ("r3d_18", (1, 3, 16, 112, 112)),
  ("r3d_18", (2, 3, 6, 40, 56)),
  ("mc3_18", (1, 3, 16, 112, 112)),
  ("mc3_18", (2, 3, 6, 40, 56)),
  ("r2plus1d_18", (1, 3, 16, 112, 112)),
  ("r2plus1d_18", (2, 3, 6, 40, 56)),
  ("resnet18", (1, 3, 224, 224)),
  ("resnet18", (2, 3, 72, 100)),
  ("resnet50", (2, 3, 72, 100)),
]


# Whole networks at full size: the slow tier, but for one small case of the fast tier.
slow = pytest.mark.slow
FAST_CASE = ("resnet18", (2, 3, 72, 100))


@pytest.mark.parametrize(
  "arch,shape", [c if c == FAST_CASE else pytest.param(*c, marks=slow) for c in CASES]
)
def test_eval_outputs_match_torchvision(arch, shape):
  torch_model = _random_torch_model(arch, num_classes=11).eval()
  x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
  with torch.no_grad():
    expected = torch_model(x).numpy()
  variables = from_torchvision(torch_model.state_dict(), arch)
  got = jax.jit(lambda v, x: models.get(arch, num_classes=11).apply(v, x, train=False))(
    variables, channels_last(x)
  )
  assert rel_err(got, expected) < 1e-4


@pytest.mark.parametrize(
  "arch",
  [
    pytest.param(a, marks=slow) for a in ("r3d_18", "mc3_18", "r2plus1d_18", "resnet18", "resnet50")
  ],
)
def test_train_mode_outputs_and_batchnorm_statistics_match_torchvision(arch):
  torch_model = _random_torch_model(arch, num_classes=5).train()
  variables = from_torchvision(torch_model.state_dict(), arch)
  shape = (3, 3, 4, 32, 40) if models.spec(arch).input_rank == 5 else (3, 3, 48, 40)
  x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
  with torch.no_grad():
    expected = torch_model(x).numpy()  # one forward pass updates the running statistics
  model = models.get(arch, num_classes=5)
  got, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(
    variables, channels_last(x)
  )
  # ResNet-50's 50 layers, normalised by statistics of as few as 3x2x2 values, amplify float32
  # rounding: here XLA's native convolution is 2.5e-5 from torch, the Winograd F(4, 3) lowering
  # 0.9-1.2e-4 (the others: below 4e-5 with either).
  assert rel_err(got, expected) < (2e-4 if arch == "resnet50" else 1e-4)
  converted = from_torchvision(torch_model.state_dict(), arch)["batch_stats"]
  flat_got = jax.tree_util.tree_leaves_with_path(updates["batch_stats"])
  flat_want = dict(jax.tree_util.tree_leaves_with_path(converted))
  for path, value in flat_got:
    assert rel_err(value, flat_want[path]) < 1e-4, jax.tree_util.keystr(path)


@slow
def test_imagenet_weights_start_the_per_frame_video_model():
  torch_model = _random_torch_model("resnet18", num_classes=7).eval()
  variables = from_torchvision(torch_model.state_dict(), "tsn_resnet18")
  clip = torch.randn(2, 3, 3, 48, 48, generator=torch.Generator().manual_seed(3))  # [B, C, T, H, W]
  with torch.no_grad():
    expected = torch.stack([torch_model(clip[:, :, t]) for t in range(3)], 1).mean(1).numpy()
  model = models.get("tsn_resnet18", num_classes=7)
  got = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, channels_last(clip))
  assert rel_err(got, expected) < 1e-4


def test_conversion_errors_name_every_offending_key():
  state_dict = _random_torch_model("r3d_18", num_classes=4).state_dict()
  del state_dict["layer2.0.conv1.1.running_var"]
  state_dict["layer9.0.conv1.0.weight"] = torch.zeros(1)
  state_dict["fc.bias"] = torch.zeros(5)
  with pytest.raises(ConversionError) as error:
    from_torchvision(state_dict, "r3d_18")
  message = str(error.value)
  assert "batch_stats/layer2_0/bn1/var" in message  # missing
  assert "layer9.0.conv1.0.weight" in message  # unknown
  assert "fc.bias (5,) -> params/fc/bias (4,)" in message  # shape mismatch


def test_weights_of_another_architecture_are_refused():
  state_dict = _random_torch_model("r2plus1d_18", num_classes=4).state_dict()
  with pytest.raises(ConversionError, match="unknown keys"):
    from_torchvision(state_dict, "r3d_18")
  with pytest.raises(ConversionError, match="convertible"):
    from_torchvision(state_dict, "resnet20")
