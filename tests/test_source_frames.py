"""A clip's frames decoded again at the source's resolution (`curation.decode.source_frames`), on real files.

The lip path reads a small face there, so each frame must be the very frame the
clip holds, slot for slot: where the written size is the source's, the two
decodes are compared pixel for pixel.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from curation.config import CurationConfig
from curation.decode import decode_clips, source_frames
from curation.records import InputItem
from curation.variants import write_container_shift
from tests.conftest import SAMPLE_DATA, SPEECH_CLIP


@pytest.mark.parametrize(
    ("path", "side", "fps"),
    [
        (SPEECH_CLIP, 640, 25.0),  # H.264 in MP4, at the source's 25 fps
        (SPEECH_CLIP, 640, 10.0),  # a lower rate than the source's: every other frame or so is skipped
        (SAMPLE_DATA / "bbb_excerpt.mkv", 1280, 24.0),  # MPEG-4 Part 2 in Matroska
        (SAMPLE_DATA / "techslides_small.mp4", 560, 25.0),
    ],
)
def test_every_clip_of_a_file_decodes_again_to_the_same_frames(path: Path, side: int, fps: float) -> None:
    config = CurationConfig(clip_seconds=1.5, max_side=side, max_fps=fps)
    clips = list(decode_clips(InputItem(str(path), "clip"), config))
    assert len(clips) >= 2
    for clip in clips:
        assert clip.source is not None and clip.source.path == str(path)
        again = np.stack(list(source_frames(clip.source, clip.fps, len(clip.frames))))
        assert again.shape == clip.frames.shape, (clip.index, again.shape)
        assert np.array_equal(again, clip.frames), f"clip {clip.index} differs"


def test_a_window_of_the_input_decodes_again_at_the_sources_size() -> None:
    item = InputItem(str(SPEECH_CLIP), "clip", start=1.3, end=4.1)
    clip = next(decode_clips(item, CurationConfig()))
    assert clip.frames.shape[1:3] == (216, 384) and clip.source is not None
    again = list(source_frames(clip.source, clip.fps, len(clip.frames)))
    assert len(again) == len(clip.frames) and again[0].shape == (360, 640, 3)
    # Each is its clip frame at the source's resolution: their 8x8 grids of mean colours agree (pixel-exact
    # slots are the test above, at the source's size).
    for k in (0, len(again) // 2, len(again) - 1):
        assert np.abs(_grid(again[k]) - _grid(clip.frames[k])).max() < 8.0, k


def _grid(frame: np.ndarray) -> np.ndarray:
    """Mean colour of each of 8x8 cells: a summary of a frame that does not depend on its resolution."""
    rows = np.array_split(frame.astype(np.float64), 8, axis=0)
    return np.array([[block.mean(axis=(0, 1)) for block in np.array_split(row, 8, axis=1)] for row in rows])


def test_a_gone_source_raises_an_error_naming_it(tmp_path: Path) -> None:
    clip = next(decode_clips(InputItem(str(SPEECH_CLIP), "clip"), CurationConfig()))
    gone = replace(clip.source, path=str(tmp_path / "gone.mp4"))
    with pytest.raises(FileNotFoundError, match="gone.mp4"):
        next(source_frames(gone, clip.fps, len(clip.frames)))


def test_a_container_shift_is_written_at_the_sources_resolution(tmp_path: Path) -> None:
    clip = next(decode_clips(InputItem(str(SAMPLE_DATA / "psychtoolbox_dualdiscs.mov"), "clip"), CurationConfig()))
    assert clip.frames.shape[1:3] != (464, 640)
    path = write_container_shift(clip, 0.2, tmp_path / "shifted.mp4")
    config = CurationConfig(max_side=640, clip_seconds=10.0)
    decoded = next(decode_clips(InputItem(str(path), "shifted"), config))
    # 640x465: the odd last row is cut for H.264's 4:2:0.
    assert decoded.source is not None and (decoded.source.width, decoded.source.height) == (640, 464)
    assert len(decoded.frames) >= len(clip.frames) - 1
