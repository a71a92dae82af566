"""XLA_FLAGS for the processes the tests start: the suite's flags with another fake device count."""

import os

DEVICE_FLAG = "--xla_force_host_platform_device_count"
# conftest sets both for the whole suite: the codegen level and the emitters (names and values);
# the processes the tests start inherit them.
CODEGEN_FLAGS = {"--xla_backend_optimization_level": "1", "--xla_cpu_use_fusion_emitters": "false"}


def xla_flags(num_devices: int | None = None) -> str:
  """This process's XLA_FLAGS (conftest's codegen flags included) with `num_devices` fake CPUs.

  Args:
    num_devices: fake CPU devices of the child process; None leaves XLA's one.

  Returns:
    The flags, for a child's environment.

  Example:
    >>> env = dict(os.environ, XLA_FLAGS=xla_flags(2))
  """
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(DEVICE_FLAG)]
  if num_devices is not None:
    flags.append(f"{DEVICE_FLAG}={num_devices}")
  return " ".join(flags)
