"""The demo's 2D baseline: a per-frame (TSN-style) narrow ResNet-18 on the demo videos.

Same data, schedule and budget as the `demo` config; it sees every frame but not their order, so it
stays near chance (25%) where the 3D model learns the motion.

  jaxres train --config demo_2d
"""

from jaxres.configs import demo


def get_config():
  c = demo.get_config()
  c.model.name = "tsn_resnet18"
  c.model.widths = (8, 16, 32, 64)
  return c
