"""Stream ACAV-1M shards into PyTorch with webdataset, decoding only what the schema declares.

`stream` returns a ``torch.utils.data.IterableDataset`` (a `ShardStream`, a
webdataset pipeline) for training loops that want tensors, not ``datasets``
objects:

* shards are split by node (``RANK``/``WORLD_SIZE`` or ``torch.distributed``)
  and then by DataLoader worker, so every sample is read exactly once per
  epoch when the shard count is a multiple of ``world_size * num_workers``
  (otherwise some workers read more, none reads a sample twice);
  ``equal_per_rank=True`` gives every rank the same number per epoch;
* shards and samples are shuffled deterministically from ``seed`` and the epoch
  (`ShardStream.set_epoch`), and an epoch resumes exactly where it stopped
  (`ShardStream.state_dict`, as torchdata's ``StatefulDataLoader`` calls it);
* decoding is *ours*: webdataset's ``.decode()`` maps ``.pyd``/``.pickle`` to
  ``pickle.loads`` and ``.pth`` to ``torch.load(weights_only=False)``, so a
  shard from an untrusted mirror could run code. Here only the members of
  `acav1m_hf.schema.MEMBERS` are read from the tar at all; anything else is
  skipped unread (or refused with ``unknown="error"``);
* the tar is read by us too (`reader.ReadShards`), so that a compressed file, a link
  member, a key like ``../x`` or a member larger than ``max_member_bytes`` is
  refused before anything is expanded or read into memory, naming the shard;
* a bad sample raises an error naming its shard and key, or, with
  ``on_error="skip"``, is skipped with a logged warning and counted.

Decoded samples are dicts keyed like the ``datasets`` columns: ``mp4`` holds
the frames (uint8 ``T x C x H x W`` at ``fps`` and ``size``; the mp4's own
audio track is not decoded, ``flac`` is the same audio at 16 kHz), ``flac``
float32 mono at 16 kHz, ``json`` a dict, ``txt`` a str, ``jpg`` uint8
``H x W x 3``, ``mask.png`` uint8 ``H x W``, ``npy`` a float32 array. An
optional member that a sample lacks is ``None``. `collate` batches them.

The stages live in the modules of this package, one job each: `reader` (the safe tar reader), `decode` (the
members' decoders), `epochs` (`ShardStream`: epochs, shuffling, resume, equal shares per rank), `dataset`
(`stream`, wiring them) and `batching` (`collate`).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
    import webdataset  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the torch extra
    raise ImportError("acav1m_hf.streaming needs torch and webdataset: pip install 'acav1m[torch]'") from exc

from acav1m_hf.streaming.batching import collate
from acav1m_hf.streaming.dataset import resolve_shards, shard_counts, stream
from acav1m_hf.streaming.decode import SampleDecoder, decode_audio, decode_image, decode_npy, decode_video, frame_times
from acav1m_hf.streaming.epochs import ShardStream

__all__ = [
    "SampleDecoder",
    "ShardStream",
    "collate",
    "decode_audio",
    "decode_image",
    "decode_npy",
    "decode_video",
    "frame_times",
    "resolve_shards",
    "shard_counts",
    "stream",
]
