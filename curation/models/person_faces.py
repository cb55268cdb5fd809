"""Faces as the sign of a person, for the cpu profile's person models (`curation.models.person`).

mediapipe 0.10.14's short-range face detector (in its wheel, Apache-2.0) sees
its input at 128 x 128, so it is run on the whole frame and on overlapping
square tiles: a 25-px face in a webcam inset is 8 px on the whole 384-px frame,
which it misses in most frames, and 22 px on a tile. A face counts only when
it is confident in at least half the sampled frames; the numbers behind each
threshold are in docs/alignment.md ("Person models").

The lip path tracks faces with `curation.models.faces` instead, for another
question: where the speaker's face is in every frame, keeping every box the
detector returns for FaceMesh to confirm. This module answers whether a
person is there at all, from a few frames, and must turn false faces away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)``: normalised to the frame (x right, y down, in [0, 1]) in results, pixels inside."""
FACE_SCORE = 0.75
"""Face detections below this score are not counted: the real face here scored 0.78-0.94, false ones (a LEGO model,
a cockatoo, a cartoon rabbit) up to 0.76, in one frame of ten (docs/alignment.md)."""
MAX_FACES = 4
"""Faces kept per clip, the most confident first: each costs the segmenter 15 pose runs (a crowd is not masked whole)."""
TILE_SIDE = 2 / 3
"""Face-detection tiles: squares of this share of the frame's short side, overlapping by half."""


def person_faces(detector: Any, frames: Sequence[np.ndarray]) -> list[Box]:
    """The boxes (pixels) of the faces found in at least half of ``frames``, the most confident first.

    A face found in one frame only is more often a false detection than a
    person (a LEGO model's knob, a cockatoo's eye); detections of one face in
    several frames (IoU > 0.3) merge into their union, so that a crop around it
    covers where it was in every frame, however it moved.
    """
    merged: list[tuple[Box, float, set[int]]] = []
    found = [(box, score, k) for k, frame in enumerate(frames) for box, score in _faces(detector, frame)]
    for box, score, k in sorted(found, key=lambda item: -item[1]):
        for i, (kept, best, seen) in enumerate(merged):
            if _iou(box, kept) > 0.3:
                union = (min(box[0], kept[0]), min(box[1], kept[1]), max(box[2], kept[2]), max(box[3], kept[3]))
                merged[i] = (union, best, seen | {k})
                break
        else:
            merged.append((box, score, {k}))
    return [box for box, _, seen in merged if 2 * len(seen) >= len(frames)][:MAX_FACES]


def face_detector() -> Any:
    """mediapipe's short-range face detector (its detections are filtered at `FACE_SCORE` by `_faces`)."""
    from mediapipe.python.solutions import face_detection

    return face_detection.FaceDetection(model_selection=0)


def _faces(detector: Any, frame: np.ndarray) -> list[tuple[Box, float]]:
    """Face boxes (pixels) and scores on the whole frame and on overlapping square tiles.

    The short-range detector sees its input at 128 x 128: on a 384 x 216 frame a
    25-px face is 8 px there, which it misses in most frames; on a tile of two
    thirds of the frame's height it is 22 px.
    """
    height, width = frame.shape[:2]
    side = max(16, round(min(height, width) * TILE_SIDE))
    windows = [(0, 0, width, height)]
    for y in _tile_starts(height, side):
        windows += [(x, y, side, side) for x in _tile_starts(width, side)]
    found = []
    for x, y, w, h in windows:
        for detection in detector.process(np.ascontiguousarray(frame[y : y + h, x : x + w])).detections or []:
            b = detection.location_data.relative_bounding_box
            box = (x + b.xmin * w, y + b.ymin * h, x + (b.xmin + b.width) * w, y + (b.ymin + b.height) * h)
            if detection.score[0] >= FACE_SCORE:  # min_detection_confidence does not filter in 0.10.14
                found.append((box, float(detection.score[0])))
    return found


def _tile_starts(length: int, side: int) -> list[int]:
    """Starts of tiles of ``side`` covering ``length`` with about half a tile of overlap."""
    if side >= length:
        return [0]
    count = math.ceil((length - side) / (side / 2)) + 1
    return sorted({int(v) for v in np.linspace(0, length - side, count).round()})


def _iou(a: Box, b: Box) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
