"""Multi-host start-up: `jax.distributed.initialize` from flags or the usual environment."""

from __future__ import annotations

import os
from typing import Optional

import jax

# Cluster managers whose environment jax.distributed.initialize() reads by itself.
_AUTO_ENV = ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None) -> bool:
  """Starts multi-host JAX when asked to; call before any other JAX work.

  Arguments win over the environment variables `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
  `JAX_PROCESS_ID`; without either, SLURM / Open MPI / TPU pod environments are auto-detected and a
  lone process stays single-host. On CPU, collectives across processes use gloo.

  Args:
    coordinator_address: "host:port" of process 0.
    num_processes: number of processes.
    process_id: this process's index.

  Returns:
    Whether `jax.distributed.initialize` was called.

  Example:
    >>> initialize("10.0.0.1:1234", num_processes=2, process_id=0)
  """
  address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
  count = num_processes if num_processes is not None else os.environ.get("JAX_NUM_PROCESSES")
  index = process_id if process_id is not None else os.environ.get("JAX_PROCESS_ID")
  if address is None and not any(k in os.environ for k in _AUTO_ENV):
    return False
  # Only the CPU backend reads this; accelerators keep their own collectives.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if address is None:
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(coordinator_address=address, num_processes=int(count),
                               process_id=int(index))
  return True

