"""Host memory retention: the environment it builds, the restart, and that it stops page faults."""

import os
import subprocess
import sys

import pytest

from jaxres import host_memory

glibc_only = pytest.mark.skipif(not host_memory._on_glibc(), reason="glibc tunables only")


def _clean_env(**extra):
  env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", host_memory.ENV_VAR)}
  env.update(extra)
  return env


@glibc_only
def test_retaining_environ_adds_tunables_and_keeps_others():
  env = host_memory.retaining_environ(
    {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4:glibc.cpu.x86_shstk=off", "HOME": "/h"}
  )
  tunables = env["GLIBC_TUNABLES"].split(":")
  assert "glibc.cpu.x86_shstk=off" in tunables
  assert "glibc.malloc.arena_max=4" not in tunables  # ours replaces a conflicting value
  assert set(host_memory.RETAIN_TUNABLES) <= set(tunables)
  assert env["HOME"] == "/h" and host_memory.retaining(env)


def test_retaining_environ_respects_opt_out():
  env = host_memory.retaining_environ({host_memory.ENV_VAR: "0"})
  assert "GLIBC_TUNABLES" not in env and not host_memory.retaining(env)


_PRINT_TUNABLES = (
  "from jaxres import host_memory; host_memory.restart_retaining(); "
  "import os, sys; print(os.environ.get('GLIBC_TUNABLES'), sys.argv[1:])"
)


@glibc_only
def test_restart_retaining_reexecutes_with_the_same_arguments():
  out = subprocess.run(
    [sys.executable, "-c", _PRINT_TUNABLES, "a", "--b"],
    env=_clean_env(),
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  assert out.split()[0] == ":".join(host_memory.RETAIN_TUNABLES)
  assert out.strip().endswith("['a', '--b']")
  opted_out = subprocess.run(
    [sys.executable, "-c", _PRINT_TUNABLES],
    env=_clean_env(**{host_memory.ENV_VAR: "0"}),
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  assert opted_out.startswith("None")


# Page faults of each of the last 8 of 16 calls of a jitted op with a 64 MiB result. Calls of the
# retained process fault nothing once its heap holds a free block the result fits; which calls do
# varies from run to run (threads' small allocations split the freed blocks of the one arena:
# 0 to 3 of calls 9-12 faulted afresh in 6 runs here), so the fewest faults of a call is compared.
_FAULTS = """
import resource, jax, jax.numpy as jnp
f = jax.jit(lambda x: x * 2.0)
x = jnp.ones((16, 1024, 1024))
faults = []
for _ in range(16):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults[-8:])
"""


@glibc_only
@pytest.mark.slow  # counts page faults in processes
def test_retained_memory_is_reused_without_page_faults():
  def faults(env):
    out = subprocess.run(
      [sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [int(n) for n in out.split()[-8:]]

  default = faults(_clean_env())
  retained = faults(host_memory.retaining_environ(_clean_env()))
  assert min(default) > 8000, default  # 64 MiB of fresh 4 KiB pages is 16384 faults, every call
  assert min(retained) < min(default) / 8, (default, retained)


# Frees a 4.5 GiB block at the top of the heap, then allocates it again: the faults of the second
# allocation. glibc trims the heap's top once the free block there reaches the trim threshold.
_TOP_OF_HEAP_FAULTS = """
import resource, numpy as np
(getattr(np, "_core", None) or np.core).multiarray._set_madvise_hugepage(False)  # 4 KiB pages
block = np.ones(9 * 2**27, np.float32)  # 4.5 GiB
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(9 * 2**27, np.float32)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@glibc_only
@pytest.mark.slow  # allocates 4.5 GiB twice in a process
def test_retained_memory_keeps_blocks_over_4_gib():
  # A train step's temporaries can top 4 GiB (r2plus1d_18 at batch 4); with a 4 GiB trim threshold
  # they were returned and faulted back in (1.2 million faults for this block) every other step.
  out = subprocess.run(
    [sys.executable, "-c", _TOP_OF_HEAP_FAULTS],
    env=host_memory.retaining_environ(_clean_env()),
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  assert int(out) < 10_000, out  # the block is 1.2 million 4 KiB pages
