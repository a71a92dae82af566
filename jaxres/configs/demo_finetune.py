"""Transfer on the demo: a model that learnt right/left/down/up learns the four diagonals.

Start it from a `demo` run (`--config.init_from=runs/demo`): the four diagonal directions are
classes the demo never showed, from 12 training videos each (48 in all, against the demo's 384),
in 200 steps (the demo takes 400). The classifier starts afresh (`init_fresh`); the rest is the
demo run's, whose filters already see motion in x and y, of which a diagonal is a mix, and moves
at a fifth of the demo's learning rate, as fine-tuning does. Without `init_from` the same config
trains from scratch, as a baseline. `--config.optimizer.trainable='("^fc/",)'` trains the new
classifier alone on the frozen network (at the demo's rate,
`--config.optimizer.learning_rate=0.05`).

Example:
  $ jaxres train --workdir runs/demo
  $ jaxres train --config demo_finetune --workdir runs/diagonal --config.init_from=runs/demo
"""

from jaxres.configs import demo


def get_config():
  c = demo.get_config()
  c.data.demo.classes = ("down_right", "up_left", "down_left", "up_right")
  c.data.demo.videos_per_class = 16  # 12 for training, 4 for evaluation, per class
  c.data.shuffle_buffer = 48
  c.init_fresh = ("^fc/",)  # a new classifier, though it has as many classes as the demo's
  c.optimizer.learning_rate = 0.01
  c.num_train_steps = 200
  c.schedule.warmup_steps = 0
  c.eval_every_steps = 100
  c.checkpoint.every_steps = 100
  return c
