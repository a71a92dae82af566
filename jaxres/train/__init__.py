"""The training engine: state, optimisers, pure steps, jit/pmap parallelism, checkpoints, the loop.

Example:
  >>> from jaxres import train
  >>> config = train.load_config("demo", ["--config.num_train_steps=100"])
  >>> train.train_and_evaluate(config, "/tmp/run")
"""

from jaxres.train.build import build_engine, build_model, build_task, build_train_step
from jaxres.train.config import apply_override, default_config, load_config
from jaxres.train.optimizer import create_optimizer, create_schedule, weight_decay_mask
from jaxres.train.parallel import JitEngine, PmapEngine, make_mesh, state_shardings
from jaxres.train.state import TrainState, init_state
from jaxres.train.steps import make_eval_step, make_train_step
from jaxres.train.synthetic import synthetic_batches
from jaxres.train.tasks import TASKS, ClassificationTask, Task, make_task
from jaxres.train.checkpoint import Checkpointer
from jaxres.train.distributed import initialize as initialize_distributed
from jaxres.train.loop import NonFiniteLossError, evaluate, train_and_evaluate
from jaxres.train.preemption import StopRequest
from jaxres.train.writers import MetricWriter, plot_curves, read_metrics
