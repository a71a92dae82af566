"""The demo's 2D baseline: a per-frame (TSN-style) narrow ResNet-18 on the demo videos.

Same data, schedule and budget as `configs/demo.py`; it sees every frame but not their order, so it
stays near chance (25%) where the 3D model learns the motion.

  jaxres train --config configs/demo_2d.py
"""

from jaxres.train.config import load_config, CONFIGS_DIR
import os


def get_config():
  c = load_config(os.path.join(CONFIGS_DIR, "demo.py"))
  c.unlock()
  c.model.name = "tsn_resnet18"
  c.model.widths = (8, 16, 32, 64)
  c.lock()
  return c
