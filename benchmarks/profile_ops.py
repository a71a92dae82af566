"""Where a compiled jaxres forward or train step spends its time, per XLA op (CPU or any backend).

Runs the step under `jax.profiler.trace`, reads the XPlane it writes, and sums the duration of every
XLA op (thunk) event by op name; each name is classified by the HLO of the compiled program
(dot, convolution, fusion kinds, copies). Prints the top ops and totals per category.

  python -m benchmarks.profile_ops --model r3d_18 [--batch 4] [--frames 16] [--size 112]
      [--what forward|train] [--reps 2] [--top 25] [--lowering auto]
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile

import jax

from benchmarks import harness
from jaxres import host_memory


def _hlo_kinds(hlo_text: str) -> tuple[dict[str, str], dict[str, str]]:
  """(op name -> a short kind: the opcode, or `fusion[main opcodes inside]`; op name -> shape)."""
  kinds = {}
  shapes = {}
  computations = {}
  current = None
  for line in hlo_text.splitlines():
    head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
    if head:
      current = head.group(1)
      computations[current] = []
      continue
    m = re.match(r"^\s*(?:ROOT )?%?([\w.\-]+) = ([^ ]+) ([\w\-]+)\(", line)
    if m and current is not None:
      name, shape, opcode = m.groups()
      computations[current].append(opcode)
      shapes[name] = shape.split("{")[0]
      if opcode == "fusion":
        called = re.search(r"calls=%?([\w.\-]+)", line)
        kind = re.search(r"kind=(\w+)", line)
        kinds[name] = ("fusion", kind.group(1) if kind else "", called.group(1) if called else "")
      else:
        kinds[name] = opcode
  out = {}
  for name, k in kinds.items():
    if isinstance(k, tuple):
      ops = set(computations.get(k[2], [])) - {"parameter", "constant", "broadcast", "bitcast"}
      main = [
        o
        for o in (
          "convolution",
          "dot",
          "reduce",
          "concatenate",
          "pad",
          "slice",
          "transpose",
          "copy",
          "select-and-scatter",
          "reduce-window",
        )
        if o in ops
      ]
      out[name] = f"fusion[{','.join(main[:3]) or 'elementwise'}]"
    else:
      out[name] = k
  return out, shapes


def _events(logdir: str) -> list[tuple[str, float]]:
  """(name, duration in ms) of every event on the host threads of the written XPlane."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2

  path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
  space = xplane_pb2.XSpace()
  with open(path, "rb") as f:
    space.ParseFromString(f.read())
  out = []
  for plane in space.planes:
    names = {k: v.name for k, v in plane.event_metadata.items()}
    for line in plane.lines:
      for ev in line.events:
        out.append((names.get(ev.metadata_id, "?"), ev.duration_ps / 1e9))
  return out


def profile(fn, compiled, reps: int) -> tuple[dict, dict, dict, dict]:
  """Times `fn` (whose program is `compiled`) per XLA op under the profiler.

  Args:
    fn: runs the compiled program once.
    compiled: its `jax.stages.Compiled`, for op names, kinds and shapes.
    reps: calls to average over.

  Returns:
    `(ms per op, ms per kind, kind of each op, shape of each op)`, times per call.

  Example:
    >>> per_op, per_kind, kinds, shapes = profile(lambda: step(x), step, reps=2)
  """
  kinds, shapes = _hlo_kinds(compiled.as_text())
  with tempfile.TemporaryDirectory() as logdir:
    with jax.profiler.trace(logdir):
      for _ in range(reps):
        jax.block_until_ready(fn())
    events = _events(logdir)
  per_op = collections.Counter()
  for name, ms in events:
    if name in kinds:
      per_op[name] += ms / reps
  per_kind = collections.Counter()
  for name, ms in per_op.items():
    per_kind[kinds[name]] += ms
  return per_op, per_kind, kinds, shapes


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="profile_ops", description=__doc__.split("\n")[0])
  p.add_argument("--model", default="r3d_18")
  p.add_argument("--batch", type=int, default=4)
  p.add_argument("--frames", type=int, default=16)
  p.add_argument("--size", type=int, default=112)
  p.add_argument("--what", choices=("forward", "train"), default="forward")
  p.add_argument("--reps", type=int, default=2)
  p.add_argument("--top", type=int, default=25)
  p.add_argument("--lowering", default=None, help="pin one conv lowering (default: auto)")
  args = p.parse_args(argv)
  shape = harness.input_shape(args.model, args.batch, args.frames, args.size)
  kwargs = {"conv_lowering": args.lowering} if args.lowering else {}
  bench = harness.jax_bench(args.model, shape, **kwargs)
  fn = bench.forward if args.what == "forward" else bench.train
  compiled = bench.forward_compiled if args.what == "forward" else bench.train_compiled
  wall_ms = 1e3 * harness.median_time(fn, reps=args.reps)
  per_op, per_kind, kinds, shapes = profile(fn, compiled, args.reps)
  total = sum(per_op.values())
  print(
    f"{args.model} {args.what} {shape}: {wall_ms:.0f} ms per call (median of {args.reps}); "
    f"{total:.0f} ms summed over {len(per_op)} ops"
  )
  print("\nby kind:")
  for kind, ms in per_kind.most_common():
    print(f"  {ms:9.1f} ms {100 * ms / total:5.1f}%  {kind}")
  print(f"\ntop {args.top} ops:")
  for name, ms in per_op.most_common(args.top):
    print(f"  {ms:9.1f} ms {100 * ms / total:5.1f}%  {name:36s} {kinds[name]:28s} {shapes[name]}")
  return 0


if __name__ == "__main__":
  host_memory.restart_retaining()
  sys.exit(main())
