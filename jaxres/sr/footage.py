"""Generated HR footage for SR tests and demos: `jaxres.data.footage`, which writes it, re-exported.

The footage and its dataset writer live with the other dataset writers in `jaxres.data`; this name
stays for the code that imports it from the SR package.

Example:
  >>> from jaxres.sr import footage
  >>> clips = footage.generate_clips(seed=0, count=2, frames=8, height=64, width=64)   # uint8
"""

from jaxres.data.footage import generate_clip, generate_clips, write_footage_dataset, write_video

__all__ = ["generate_clip", "generate_clips", "write_footage_dataset", "write_video"]
