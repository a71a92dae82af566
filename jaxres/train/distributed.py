"""Multi-host start-up: `jax.distributed.initialize` from flags or the usual environment."""

from __future__ import annotations

import os
from typing import Callable, Optional

import jax
import numpy as np

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



def skips_over_hosts(counter, allgather: Optional[Callable] = None) -> dict[str, int]:
  """Files skipped per reason by all hosts together (a collective: every host must call it).

  Each host decodes its own share of the files, so those skips add up over hosts; skips found
  while listing (every host lists every file) count once.

  Args:
    counter: a `jaxres.data.skips.SkipCounter`.
    allgather: gathers a host's array into `[hosts, ...]` (default
      `jax.experimental.multihost_utils.process_allgather`; injectable for tests).

  Returns:
    `{reason: count}` over all hosts, reasons with none left out.

  Example:
    >>> skips_over_hosts(SKIPPED)
    {'corrupt': 3, 'not_video': 1}
  """
  own, shared = counter.split_counts()
  if allgather is None:
    if jax.process_count() == 1:
      return counter.counts()
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    allgather = multihost_utils.process_allgather
  # Hosts may have met different reasons: gather the names first, as fixed-width codes.
  names = sorted(own)
  width = 32
  codes = np.zeros((16, width), np.uint8)
  for i, name in enumerate(names[:16]):
    raw = name.encode()[:width]
    codes[i, :len(raw)] = np.frombuffer(raw, np.uint8)
  all_codes = np.asarray(allgather(codes)).reshape(-1, width)
  reasons = sorted({bytes(row).rstrip(b"\0").decode() for row in all_codes if row.any()})
  own_vector = np.array([own.get(r, 0) for r in reasons], np.int64)
  total = np.asarray(allgather(own_vector)).reshape(-1, len(reasons)).sum(0) if reasons else []
  counts = dict(shared)
  for reason, n in zip(reasons, total):
    counts[reason] = counts.get(reason, 0) + int(n)
  return {k: v for k, v in sorted(counts.items()) if v}
