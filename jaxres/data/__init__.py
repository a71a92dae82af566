"""Video data: files -> decoded clips -> tf.data per host -> global `jax.Array` batches.

Modules (import what you use; only the tf.data ones load TensorFlow):

- `video`: all video file I/O with PyAV: clips by index (seeking to just the frames a clip needs),
  frame-by-frame streaming with presentation times, atomic writing (`video_write` holds the writer).
- `frames`: frame-folder I/O (a sequence is a folder of PNG/JPEG images): listing in natural
  order, missing-frame checks, clips by index, paired LR/HR reads.
- `demo`: `write_demo_dataset`, the generated motion dataset every job defaults to.
- `photo_demo`: `write_photo_dataset`, the SR demo's pans over scikit-image's bundled photographs
  (`data.demo.kind = "photos"`), with held-out photographs for evaluation.
- `footage`: generated HR footage for SR (textured scenes with sub-pixel motion) and
  `write_footage_dataset`, a folder dataset of it (`jaxres.sr.footage` re-exports it).
- `split_lists`: `write_split_list`, the one writer of the split lists the dataset writers make.
- `sources`: class folders, UCF101/CSV split lists, class names, per-host sharding.
- `sequences`: frame-folder datasets (REDS / Vid4, Vimeo-90K, MMAction2 rawframes) and their lists.
- `prepare` / `records`: `jaxres prepare` (TFRecord shards of JPEG frames + manifest).
- `tfds_builder`: the `jaxres_videos` TFDS builder for folders and prepared data.
- `config`: `default_data_config()`, every data field.
- `transforms`: clip sampling, crops, flips, normalisation (tf ops).
- `pipeline`: `create_iterator`, `eval_data`, `build_dataset`, `dataset_info`; its stages are
  `catalog` (what a config names; `ensure_demo_data` writes the demo before it is listed),
  `host_sources` (each host's share), `clips` (decoding), `views` (crops, eval views, padding)
  and `iterator` (global arrays on the mesh). No stage branches on the task.
- `skips`: `SKIPPED`, the count of skipped files by reason.

Example:
  >>> from jaxres.data import catalog, pipeline
  >>> from jaxres.data.config import default_data_config
  >>> config = default_data_config()
  >>> catalog.ensure_demo_data(config)      # the demo's videos, written once
  >>> batch = next(pipeline.create_iterator(config, "train", global_batch_size=8, sharding=None,
  ...                                       seed=0))
"""
