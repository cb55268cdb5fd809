"""Each clip frame is the source frame nearest its slot's time (`curation.decode`), on files with known frame times.

A frame placed a period early or late shifts the video against the audio, and
the lip path reads that shift as a desync: on a 12-fps recording whose average
rate (frame count over duration) is 11.94, every frame was a period early and
the audio read 0.06 s late (docs/alignment.md). The frames here carry their
index as a grey level, so the frame a slot got tells the time it was shown at.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.records import InputItem

GREY_STEP = 4
"""Grey levels between consecutive frame indices: far above H.264's error on a flat frame at crf 0."""


def _write(path: Path, times: list[float], fps: int) -> Path:
    """An MP4 whose frame ``k`` is shown at ``times[k]`` and is grey ``GREY_STEP * k``, with 1 kHz audio throughout."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.codec_context.time_base = Fraction(1, 90_000)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "0"}
        audio = out.add_stream("aac", rate=16_000, layout="mono")  # every stream before the first packet
        for k, time in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), GREY_STEP * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(time * 90_000), video.codec_context.time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        n = int((times[-1] + 1.0 / fps) * 16_000)
        tone = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(n) / 16_000)).astype(np.float32)
        for i in range(0, n, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 16_000, i, Fraction(1, 16_000)
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
    return path


def _shown(path: Path, config: CurationConfig) -> tuple[float, np.ndarray]:
    """The clip's fps and the source frame index each of its slots holds."""
    clip = next(decode_clips(InputItem(str(path), "clip"), config))
    return clip.fps, np.round(clip.frames[:, :, :, 0].mean(axis=(1, 2)) / GREY_STEP).astype(int)


def test_a_steady_rate_is_kept_when_the_last_frame_lasts_longer(tmp_path: Path) -> None:
    # 24 frames at 12 fps, the last one held for 0.5 s: the average rate is 9.6 fps (24 frames in 2.5 s), the
    # frames' own 12.
    times = [k / 12 for k in range(23)] + [23 / 12 + 0.5]
    path = _write(tmp_path / "held.mp4", times, 12)
    fps, shown = _shown(path, CurationConfig(clip_seconds=1.9))
    assert fps == 12.0
    assert shown.tolist() == list(range(len(shown))), "a frame is shown in another frame's slot"


@pytest.mark.parametrize("fps", [25.0, 10.0])
def test_a_lower_rate_keeps_the_frame_nearest_each_slot(tmp_path: Path, fps: float) -> None:
    path = _write(tmp_path / "thirty.mp4", [k / 30 for k in range(60)], 30)
    clip_fps, shown = _shown(path, CurationConfig(clip_seconds=1.8, max_fps=fps))
    assert clip_fps == fps
    error = shown / 30 - np.arange(len(shown)) / fps
    assert np.abs(error).max() <= 0.5 / 30 + 1e-9, error.round(3).tolist()
