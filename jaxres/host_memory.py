"""Host memory: keep freed memory in the process so compiled CPU steps stop page-faulting.

On CPU every call of a compiled function allocates its temporaries (GBs for a video ResNet's train
step) and frees them at the end. glibc's malloc serves blocks above 32 MiB with fresh `mmap`s and
returns them with `munmap`, trims its heaps' tops, and gives threads their own arenas, so the next
call faults the same memory in again, zeroed page by page by the kernel: hundreds of thousands of
4 KiB faults per step of a video ResNet, which slow its steps down, the more so when other
libraries (torch) allocate in between.

`RETAIN_TUNABLES` tells glibc to keep freed memory for reuse: no `mmap` for large blocks, no heap
trimming, one arena. The trim threshold is the largest size_t: glibc trims when the free block at
the heap's top reaches the threshold, and with 4 GiB - 1 a train step whose temporaries topped
4 GiB (r2plus1d_18 at batch 4 of 16x112x112) had them trimmed and faulted back in every other
step (~970,000 faults; 4.1-4.5 s steps alternating with 5.7-8.6 s). Transparent huge pages for
the heap (`glibc.malloc.hugetlb=1`) are left off: with them the retained heap's resident size
varies more from run to run than upscaling's memory estimate allows (`jaxres.sr.memory_budget`),
and training is no faster.

glibc reads tunables only when a process starts (setting them later with `mallopt` misses the
arenas already made), so `restart_retaining` re-executes the process with them; the `jaxres`
command and the benchmark scripts do so first thing.

The price is a higher resident size, as freed blocks stay mapped and one heap fragments more. Set
`JAXRES_RETAIN_MEMORY=0` to keep glibc's defaults. Off glibc (macOS, musl) nothing changes. The
figures (faults per step, step times with and without, resident sizes) are in
benchmarks/README.md ("Retained host memory").

Example:
  >>> from jaxres import host_memory
  >>> host_memory.restart_retaining()   # first thing in a script's main; returns if nothing to do
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Mapping

ENV_VAR = "JAXRES_RETAIN_MEMORY"
RETAIN_TUNABLES = (
  "glibc.malloc.mmap_max=0",
  "glibc.malloc.trim_threshold=18446744073709551615",
  "glibc.malloc.arena_max=1",
)
_RETAIN_NAMES = frozenset(t.split("=")[0] for t in RETAIN_TUNABLES)


def _on_glibc() -> bool:
  return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def retaining(environ: Mapping[str, str] | None = None) -> bool:
  """Whether `environ` (default: this process's) carries all of `RETAIN_TUNABLES`."""
  environ = os.environ if environ is None else environ
  have = set(environ.get("GLIBC_TUNABLES", "").split(":"))
  return all(t in have for t in RETAIN_TUNABLES)


def retaining_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
  """A copy of `environ` (default: this process's) with `RETAIN_TUNABLES` added to GLIBC_TUNABLES.

  For starting subprocesses that retain freed memory. Unchanged when `JAXRES_RETAIN_MEMORY=0` or
  off glibc.

  Args:
    environ: the environment to extend.

  Returns:
    The new environment.

  Example:
    >>> subprocess.run(cmd, env=host_memory.retaining_environ())
  """
  env = dict(os.environ if environ is None else environ)
  if env.get(ENV_VAR, "1").strip() == "0" or not _on_glibc() or retaining(env):
    return env
  keep = [
    t
    for t in env.get("GLIBC_TUNABLES", "").split(":")
    if t and t.split("=")[0] not in _RETAIN_NAMES
  ]
  env["GLIBC_TUNABLES"] = ":".join(keep + list(RETAIN_TUNABLES))
  return env


def restart_retaining() -> None:
  """Re-executes this process with `RETAIN_TUNABLES` unless it has them, opts out, or is off glibc.

  Call it first in a program's entry point, before anything slow: the process is replaced by a
  fresh one with the same interpreter, arguments (`sys.orig_argv`) and environment plus the
  tunables, so nothing done before the call survives. Returns normally when there is nothing to do.
  """
  env = retaining_environ()
  if retaining() or not retaining(env):
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
