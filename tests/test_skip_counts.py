"""Skip counts over hosts: each host's own share adds up, what every host lists counts once."""

import threading

from jaxres.data.skips import SkipCounter, as_metrics
from jaxres.train.distributed import skips_over_hosts


def _on_hosts(counters):
  """Runs `skips_over_hosts` on every counter at once, as hosts would, with a threaded exchange."""
  n = len(counters)
  slots, results = [None] * n, [None] * n
  barrier = threading.Barrier(n)

  def host(i):
    def exchange(value):
      slots[i] = dict(value)
      barrier.wait()
      gathered = list(slots)
      barrier.wait()  # everyone has read the slots before they are reused
      return gathered

    results[i] = skips_over_hosts(counters[i], exchange=exchange)

  threads = [threading.Thread(target=host, args=(i,)) for i in range(n)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=30)
  return results


def test_own_skips_add_up_and_listed_skips_count_once():
  hosts = [SkipCounter() for _ in range(3)]
  for counter in hosts:  # every host lists the whole folder
    counter.record("/d/readme.txt", "not_video", shared=True)
  hosts[0].record("/d/a/cut.mp4", "partial")
  hosts[0].record("/d/a/bad.mp4", "corrupt")
  hosts[1].record("/d/b/bad.mp4", "corrupt")
  hosts[1].record("/d/b/bad.mp4", "corrupt")  # met again in a later epoch: once
  hosts[2].record("/d/c/tiny.mp4", "short")
  expected = {"corrupt": 2, "not_video": 1, "partial": 1, "short": 1}
  assert _on_hosts(hosts) == [expected] * 3
  assert hosts[1].split_counts() == ({"corrupt": 1}, {"not_video": 1})
  assert as_metrics(expected)["data/skipped_total"] == 5


def test_one_host_without_skips_and_one_process():
  hosts = [SkipCounter(), SkipCounter()]
  hosts[1].record("/d/x.mp4", "empty")
  assert _on_hosts(hosts) == [{"empty": 1}] * 2
  assert _on_hosts([SkipCounter(), SkipCounter()]) == [{}, {}]
  single = SkipCounter()
  single.record("/d/x.mp4", "corrupt")
  assert skips_over_hosts(single) == {"corrupt": 1}  # one process: no collective
