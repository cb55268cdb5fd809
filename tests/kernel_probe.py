"""Print a digest of everything the cpu profile computes on some clips, for `test_determinism.py`.

Run as ``python -m tests.kernel_probe CLIPS.npz`` under different BLAS and SIMD
settings: the clips (decoded frames and audio, made once by the test) go
through the pipeline's model stages and `sample_metadata`; the output has a
digest of each clip's metadata JSON and mask, and the aligner's unrounded numbers.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

from curation.analyse import load_profile, run_model_stages
from curation.config import CurationConfig
from curation.records import Clip, InputItem
from curation.sample import sample_metadata


def clips_from(path: str) -> list[Clip]:
    """The clips saved by the test, each as ``{name}.frames``, ``{name}.audio`` and ``{name}.fps``."""
    data = np.load(path)
    names = sorted({key.rsplit(".", 1)[0] for key in data.files})
    return [
        Clip(
            item=InputItem(path=name, video_id=name),
            index=0,
            start=0.0,
            end=len(data[f"{name}.frames"]) / float(data[f"{name}.fps"]),
            fps=float(data[f"{name}.fps"]),
            frames=data[f"{name}.frames"],
            audio=data[f"{name}.audio"],
        )
        for name in names
    ]


def probe(path: str) -> dict[str, dict[str, object]]:
    """Per clip: the sha256 of its metadata JSON plus mask bytes, and the aligner's numbers before rounding."""
    config = CurationConfig()
    profile = load_profile(config)
    digests, raw = {}, {}
    for clip, result in zip(clips := clips_from(path), run_model_stages(clips, profile, config), strict=True):
        metadata, mask = sample_metadata(result.decision, result.caption, profile, config)
        h = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode())
        h.update(b"" if mask is None else mask.tobytes())
        digests[clip.item.video_id] = h.hexdigest()
        analysis = profile.aligner.analyse(clip, None)
        numbers = [analysis.instance.score, analysis.instance.raw, analysis.sync_offset, analysis.sync_confidence]
        numbers += analysis.temporal_windows or []
        numbers += [] if analysis.heatmap is None else analysis.heatmap.ravel().tolist()
        raw[clip.item.video_id] = [float("nan") if v is None else float(v) for v in numbers]
    return {"digests": digests, "raw": raw}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1]), sort_keys=True))
