"""XLA_FLAGS for the processes the tests start: the suite's flags with another fake device count."""

import os

DEVICE_FLAG = "--xla_force_host_platform_device_count"
CODEGEN_FLAG = "--xla_backend_optimization_level"  # conftest sets it for the whole suite


def xla_flags(num_devices: int | None = None, default_codegen: bool = False) -> str:
  """This process's XLA_FLAGS (conftest's codegen level included) with `num_devices` fake CPUs.

  Args:
    num_devices: fake CPU devices of the child process; None leaves XLA's one.
    default_codegen: drop conftest's LLVM level, for XLA's default.

  Returns:
    The flags, for a child's environment.

  Example:
    >>> env = dict(os.environ, XLA_FLAGS=xla_flags(2))
  """
  dropped = (DEVICE_FLAG,) + ((CODEGEN_FLAG,) if default_codegen else ())
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(dropped)]
  if num_devices is not None:
    flags.append(f"{DEVICE_FLAG}={num_devices}")
  return " ".join(flags)
