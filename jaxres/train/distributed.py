"""Multi-host start-up: `jax.distributed.initialize` from flags or the usual environment."""

from __future__ import annotations

import itertools
import json
import os
from typing import Callable, Optional

import jax

# Cluster managers whose environment jax.distributed.initialize() reads by itself.
_AUTO_ENV = (
  "SLURM_JOB_ID",
  "OMPI_COMM_WORLD_SIZE",
  "TPU_WORKER_HOSTNAMES",
  "MEGASCALE_COORDINATOR_ADDRESS",
)


def initialize(
  coordinator_address: Optional[str] = None,
  num_processes: Optional[int] = None,
  process_id: Optional[int] = None,
) -> bool:
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
    jax.distributed.initialize(
      coordinator_address=address, num_processes=int(count), process_id=int(index)
    )
  return True


def skips_over_hosts(counter, exchange: Optional[Callable[[dict], list]] = None) -> dict[str, int]:
  """Files skipped per reason by all hosts together (every host must call it, in the same order).

  Each host decodes its own share of the files, so those skips add up over hosts; skips found
  while listing (every host lists every file) count once. The counts travel through the
  coordinator's key-value store, not a device collective, so no new communicator is set up
  between training steps.

  Args:
    counter: a `jaxres.data.skips.SkipCounter`.
    exchange: maps this host's `{reason: count}` to every host's, in process order (default: the
      `jax.distributed` coordinator; injectable for tests).

  Returns:
    `{reason: count}` over all hosts, reasons with none left out.

  Example:
    >>> skips_over_hosts(SKIPPED)
    {'corrupt': 3, 'not_video': 1}
  """
  own, shared = counter.split_counts()
  if exchange is None:
    if jax.process_count() == 1:
      return counter.counts()
    exchange = _exchange_through_coordinator
  counts = dict(shared)
  for host_counts in exchange(own):
    for reason, n in host_counts.items():
      counts[reason] = counts.get(reason, 0) + int(n)
  return {k: v for k, v in sorted(counts.items()) if v}


_EXCHANGES = itertools.count()


def _exchange_through_coordinator(value: dict, timeout_ms: int = 300_000) -> list:
  # jax.distributed's client (as orbax's barriers use it); calls are numbered alike on every host.
  from jax._src import distributed as jax_distributed  # pylint: disable=import-outside-toplevel

  client = jax_distributed.global_state.client
  key = f"jaxres/skips/{next(_EXCHANGES)}"
  client.key_value_set(f"{key}/{jax.process_index()}", json.dumps(value))
  return [
    json.loads(client.blocking_key_value_get(f"{key}/{i}", timeout_ms))
    for i in range(jax.process_count())
  ]
