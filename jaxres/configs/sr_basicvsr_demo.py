"""Video super-resolution x2 with jaxres' small bidirectional recurrent network (`recurrent_vsr`).

The `sr_edsr_demo` recipe (data, degradation, loss, optimiser) with a model that propagates features
across the 5 frames of each clip, aligned by a learned flow (see `jaxres.models.sr.RecurrentVSR`).
Slower per step than EDSR on CPU, so half the steps.

  $ jaxres train --config sr_basicvsr_demo --workdir runs/sr_basicvsr
  $ jaxres upscale in.mp4 out.mp4 --checkpoint runs/sr_basicvsr --chunk 16 --overlap 4
"""

import ml_collections

from jaxres.configs import sr_edsr_demo
from jaxres.configs.common import set_sr_model


def get_config() -> ml_collections.ConfigDict:
  c = sr_edsr_demo.get_config()
  set_sr_model(
    c,
    {"name": "recurrent_vsr", "num_blocks": 2, "features": 24, "align": "flow", "dtype": "float32"},
  )  # at the demo's scale, still one value for model and task
  c.data.num_frames = 5  # the recurrent model needs clips (the EDSR demo trains on single frames)
  c.global_batch_size = 8
  c.num_train_steps = 1000
  return c
