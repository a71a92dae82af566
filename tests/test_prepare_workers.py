"""`jaxres prepare`'s worker processes end when their parent is killed with SIGKILL (they used to
block on their task queue forever)."""

import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PARENT = """
import concurrent.futures, multiprocessing, os, time
from jaxres.data.prepare import die_with_parent
if __name__ == "__main__":
  pool = concurrent.futures.ProcessPoolExecutor(
      2, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent,
      initargs=(os.getpid(),))
  futures = [pool.submit(time.sleep, 600) for _ in range(2)]
  time.sleep(0.5)
  print(*pool._processes, flush=True)
  time.sleep(600)
"""


def _alive(pid):
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
  except FileNotFoundError:
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_their_parent_is_killed(tmp_path):
  script = tmp_path / "parent.py"
  script.write_text(PARENT)
  parent = subprocess.Popen(
    [sys.executable, str(script)],
    stdout=subprocess.PIPE,
    text=True,
    env=dict(os.environ, PYTHONPATH=ROOT),
  )
  workers = []
  try:
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
  finally:
    parent.send_signal(signal.SIGKILL)
    parent.wait()
  deadline = time.time() + 30
  while any(_alive(pid) for pid in workers) and time.time() < deadline:
    time.sleep(0.1)
  alive = [pid for pid in workers if _alive(pid)]
  for pid in alive:  # do not leave them behind if the test fails
    os.kill(pid, signal.SIGKILL)
  assert not alive
