"""Damaged media files for the tests: what users' collections contain."""

import os

import av


def cut_with_index_first(src: str, dst: str, keep: float) -> str:
  """Writes the first `keep` fraction of `src` remuxed with its index (moov) first, as streaming
  sites store mp4s: the header still lists every frame, the frames stop partway (a cut download).

  Returns:
    `dst`.
  """
  whole = dst + ".whole.mp4"
  with av.open(src) as inp, av.open(whole, "w", options={"movflags": "faststart"}) as out:
    stream = out.add_stream_from_template(inp.streams.video[0])
    for packet in inp.demux(inp.streams.video[0]):
      if packet.dts is not None:
        packet.stream = stream
        out.mux(packet)
  with open(whole, "rb") as f:
    data = f.read()
  assert data.find(b"moov") < data.find(b"mdat")
  with open(dst, "wb") as f:
    f.write(data[: int(len(data) * keep)])
  os.remove(whole)
  return dst
