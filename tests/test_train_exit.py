"""`jaxres train` on real video files exits when it is done.

The endless training pipeline decodes videos in `tf.numpy_function`s. Left running to interpreter
exit, a decode in flight can never take the GIL back and the tf.data iterator's destructor waits
for it: the process printed its summary and then hung (or aborted). The loop now closes its
training batches (tests/test_train_loop.py), and dropping a `BatchIterator` stops its pipeline at
once (it used to live on in a reference cycle until exit:
`test_dropping_an_endless_iterator_stops_its_pipeline` timed out).
"""

import os
import subprocess
import sys

import pytest

from jaxres.data import catalog, pipeline
from jaxres.data.config import default_data_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = """
from jaxres.train.config import default_config

def get_config():
  c = default_config()
  c.model.name = "r3d_tiny"
  c.model.num_classes = 4
  c.data.path = {path!r}
  c.data.demo.videos_per_class = 4
  c.data.demo.num_frames = 8
  c.data.demo.size = 32
  c.data.num_frames, c.data.resize, c.data.crop_size = 4, 20, 16
  c.data.shuffle_buffer = 8
  c.global_batch_size = 8
  c.parallel.num_devices = 1  # the exit is the point, not the mesh: compiles in 2/3 of the time
  c.num_train_steps = 3
  c.eval_steps = 1
  c.log_every_steps = 1
  c.progress_bar = False
  c.tensorboard = False
  c.plot = False
  return c
"""


def _run(code_or_args, tmp_path, timeout):
  env = dict(os.environ, PYTHONPATH=ROOT, JAXRES_RETAIN_MEMORY="0")
  proc = subprocess.run(
    [sys.executable, *code_or_args],
    cwd=tmp_path,
    env=env,
    text=True,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    timeout=timeout,
  )
  return proc.returncode, proc.stdout


@pytest.mark.slow  # a process's exit is the point
def test_train_on_demo_videos_exits_after_its_summary(tmp_path):
  config = tmp_path / "tiny_demo.py"
  config.write_text(CONFIG.format(path=str(tmp_path / "videos")))
  rc, out = _run(
    ["-m", "jaxres.cli", "train", "--config", str(config), "--workdir", str(tmp_path / "run")],
    tmp_path,
    timeout=300,
  )
  assert rc == 0, out
  assert "finished at step 3" in out
  assert (tmp_path / "run" / "summary.json").exists()


SCRIPT = """
import sys
from jaxres.data import catalog, pipeline
from jaxres.data.config import default_data_config
c = default_data_config()
c.path = sys.argv[1]
c.demo.videos_per_class, c.demo.num_frames, c.demo.size = 2, 8, 32
c.num_frames, c.resize, c.crop_size = 4, 20, 16
catalog.ensure_demo_data(c)
it = pipeline.create_iterator(c, "train", global_batch_size=4, sharding=None, seed=0)
next(it)
del it  # the last reference: the pipeline stops here, not at exit
print("dropped", flush=True)
"""


@pytest.mark.slow  # a process's exit is the point
def test_dropping_an_endless_iterator_stops_its_pipeline(tmp_path):
  rc, out = _run(["-c", SCRIPT, str(tmp_path / "videos")], tmp_path, timeout=120)
  assert rc == 0 and "dropped" in out, out


def test_closed_iterator_stops(tmp_path):
  c = default_data_config()
  c.path = str(tmp_path / "videos")
  c.demo.videos_per_class, c.demo.num_frames, c.demo.size = 2, 8, 32
  c.num_frames, c.resize, c.crop_size = 4, 20, 16
  catalog.ensure_demo_data(c)  # the set-up step: listing never writes
  with pipeline.create_iterator(c, "train", global_batch_size=4, sharding=None, seed=0) as it:
    assert next(it)["video"].shape == (4, 4, 16, 16, 3)
  with pytest.raises(StopIteration):
    next(it)


LEFT_OPEN = """
import gc, sys
from jaxres.data import catalog, pipeline
from jaxres.data.config import default_data_config
c = default_data_config()
c.path = sys.argv[1]
c.demo.videos_per_class, c.demo.num_frames, c.demo.size = 2, 8, 32
c.num_frames, c.resize, c.crop_size = 4, 20, 16
catalog.ensure_demo_data(c)
make = lambda: pipeline.create_iterator(c, "train", global_batch_size=4, sharding=None, seed=0)
if sys.argv[2] == "cycle":  # first one that only the garbage collector can free
  holder = {"it": make()}
  holder["self"] = holder
  next(holder["it"])
  del holder
  gc.collect()
  print("collected", flush=True)
batches = make()  # the README's Data snippet: a module global, never closed
next(batches)
print("got a batch", flush=True)
"""


@pytest.mark.slow  # starts processes (~10 s)
def test_iterators_left_open_or_in_a_cycle_do_not_keep_the_process_alive(tmp_path):
  # Before: "got a batch", then the process never exited (timeout).
  rc, out = _run(["-c", LEFT_OPEN, str(tmp_path / "videos"), "cycle"], tmp_path, timeout=120)
  assert rc == 0 and "collected" in out and "got a batch" in out, out
