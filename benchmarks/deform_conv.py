"""The modulated deformable convolution of IconVSR and BasicVSR++ on CPU, forward, alternated in one
run: `jaxres.models.sampling.modulated_deform_conv` (each bilinear corner one gather of C/G-channel
rows by a flat row index, what the models use) against sampling each group's image under `vmap`,
with torchvision's `deform_conv2d` beside them when torch is installed.

Shapes are the models' at the 320x180 LR frames of `vs_basicsr.py`: IconVSR's PCD alignment at its
first pyramid level (two frames, 64 channels, 8 groups) and BasicVSR++'s second-order alignment
(one frame, 128 channels in, 64 out, 16 groups).

  python -m benchmarks.deform_conv [--only iconvsr_pcd_l1] [--reps 5] [--no-torch]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from jaxres import host_memory
from jaxres.models import sampling

# name -> (B, H, W, C in, C out, deformable groups)
SHAPES = {
  "iconvsr_pcd_l1": (2, 180, 320, 64, 64, 8),
  "basicvsrpp_align": (1, 180, 320, 128, 64, 16),
}


def per_group_vmap(x, offset, mask, kernel, groups: int):
  """The same convolution with each group's image sampled under `vmap` (the earlier form)."""
  b, h, w, c = x.shape
  taps = kernel.shape[0] * kernel.shape[1]
  offset = offset.reshape(b, h, w, groups, taps, 2)
  ky, kx = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
  sy = (np.arange(h)[:, None, None, None] - 1 + ky.reshape(1, 1, 1, taps)).astype(np.float32)
  sx = (np.arange(w)[None, :, None, None] - 1 + kx.reshape(1, 1, 1, taps)).astype(np.float32)
  sample = jax.vmap(sampling.bilinear_sample, in_axes=(3, 3, 3), out_axes=3)
  columns = sample(
    x.reshape(b, h, w, groups, c // groups), sx + offset[..., 1], sy + offset[..., 0]
  )
  columns = columns * mask.reshape(b, h, w, groups, taps, 1)
  weights = kernel.reshape(taps, groups, c // groups, -1)
  return jnp.einsum("bhwgkc,kgco->bhwo", columns, weights)


def inputs(shape, seed: int = 0):
  """(x, offset, mask, kernel) for `shape`, offsets of a few pixels as trained models make."""
  b, h, w, cin, cout, g = shape
  rng = np.random.default_rng(seed)
  return (
    rng.standard_normal((b, h, w, cin), np.float32),
    rng.standard_normal((b, h, w, 2 * g * 9), np.float32) * 3,
    rng.random((b, h, w, g * 9), np.float32),
    rng.standard_normal((3, 3, cin, cout), np.float32) * 0.05,
  )


def median_ms(fn, reps: int) -> float:
  """Median milliseconds of `fn()` over `reps` calls, after one untimed call."""
  fn()
  return 1e3 * harness.median_time(fn, reps)


def torch_call(args):
  """A callable running torchvision's `deform_conv2d` on `args`, or None without torch."""
  try:
    import torch
    import torchvision
  except ImportError:
    return None
  x, offset, mask, kernel = (torch.from_numpy(np.ascontiguousarray(a)) for a in args)
  nchw = lambda a: a.permute(0, 3, 1, 2).contiguous()  # noqa: E731
  x, offset, mask = nchw(x), nchw(offset), nchw(mask)
  weight = kernel.permute(3, 2, 0, 1).contiguous()  # groups: from the offset's channels

  def call():
    with torch.no_grad():
      return torchvision.ops.deform_conv2d(x, offset, weight, padding=1, mask=mask)

  return call


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--only", default=",".join(SHAPES), help="comma-separated shape names")
  parser.add_argument("--shape", default=None, help="B,H,W,Cin,Cout,G instead of the named ones")
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--no-torch", action="store_true")
  args = parser.parse_args(argv)
  shapes = (
    {args.shape: tuple(int(n) for n in args.shape.split(","))}
    if args.shape
    else {name: SHAPES[name] for name in args.only.split(",")}
  )
  print("| shape | jaxres ms | per-group vmap ms | speed-up | torchvision ms | max rel. diff |")
  print("|---|---|---|---|---|---|")
  for name, shape in shapes.items():
    groups = shape[-1]
    arrays = inputs(shape)
    on_device = [jnp.asarray(a) for a in arrays]
    ours = jax.jit(lambda *a: sampling.modulated_deform_conv(*a, deformable_groups=groups))
    theirs = jax.jit(lambda *a: per_group_vmap(*a, groups=groups))
    y_ours, y_theirs = ours(*on_device), theirs(*on_device)
    diff = float(jnp.max(jnp.abs(y_ours - y_theirs)) / jnp.max(jnp.abs(y_theirs)))
    times = {"ours": [], "theirs": []}
    for _ in range(2):  # alternated
      times["ours"].append(median_ms(lambda: ours(*on_device), args.reps))
      times["theirs"].append(median_ms(lambda: theirs(*on_device), args.reps))
    ours_ms, theirs_ms = min(times["ours"]), min(times["theirs"])
    call = None if args.no_torch else torch_call(arrays)
    torch_ms = f"{median_ms(call, args.reps):.1f}" if call else "-"
    print(
      f"| {name} {list(shape)} | {ours_ms:.1f} | {theirs_ms:.1f} | {theirs_ms / ours_ms:.2f}x "
      f"| {torch_ms} | {diff:.1e} |",
      flush=True,
    )
  return 0


if __name__ == "__main__":
  host_memory.restart_retaining()
  raise SystemExit(main())
