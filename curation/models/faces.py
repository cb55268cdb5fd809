"""Faces and mouths in a clip's frames, from the face models inside mediapipe 0.10.14's wheel.

Web video's faces are often small (``forensics_hello``'s webcam inset face is
about 23 px wide in a 384-px frame), and FaceMesh needs a face that fills its
input, so each frame goes through two models:

1. BlazeFace full range (``model_selection=1``, for faces up to 5 m away) finds
   the faces in the whole frame, and looks again on a zoomed crop where it
   missed; each face is followed from frame to frame (the detection that
   overlaps its last box most). The face found in the most frames is followed,
   and up to `MAX_FACES` - 1 others that the detector finds in at least
   `MIN_FOUND_SHARE` of the frames beside it, so that the caller can tell the
   speaker from a listener by whose lips follow the voice
   (`curation.cue_aligner`);
2. FaceMesh (468 landmarks) runs on each face's crop, `MARGIN` times the box,
   upscaled to `CROP` px, where the face is large enough for its lips. Where
   that crop would be smaller than FaceMesh's own input (`MESH_INPUT`) and the
   caller can decode the frames again at the source's resolution, the crop is
   cut from the source's frame instead: upscaling a 23-px face invents no
   lips, while the 1280-px source has them at 77 px (docs/alignment.md
   measures what that changes).

The mouth opening is the outer lips' height over the eyes' outer corners'
distance, ``|lm0 - lm17| / |lm33 - lm263|``: a ratio, so the face's size and
its distance from the camera cancel. Not the inner lips' gap over the mouth's
width (``|lm13 - lm14| / |lm78 - lm308|``): on a 23-px face the inner gap is
about a pixel, within the landmarks' noise, and the mouth's width itself
changes with rounded vowels; the outer height moves with the jaw, and the eyes
do not move with speech. On forensics_hello (the only talking face here, so
this is a choice made on the test clip) the voice's correlation with it at lag
0 is 0.54 against 0.31 for the inner ratio (`curation.lipsync`'s envelope).
A frame without a face or landmarks is NaN.

The models are TFLite graphs run by mediapipe's XNNPACK CPU kernels, whose
last bits may depend on the CPU's SIMD width; `OPEN_STEP` rounds the opening
so that such noise cannot reach `curation.roles.DECIMALS` (README.md, "Shards").
mediapipe is imported on first use: the base install imports this package without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation.models import CPU_MODELS_MISSING

MARGIN = 1.8
"""The landmark crop's side over the detected box's longest side: the box covers eyes to mouth, not chin or jaw."""
CROP = 256
"""Side of the upscaled crop FaceMesh sees, pixels (its input is 192; a 23-px face then spans about 130)."""
MESH_INPUT = 192
"""FaceMesh's input side, pixels: a landmark crop smaller than this in the frames is cut from the source's frame."""
MIN_DETECTION = 0.5
"""Passed as mediapipe's ``min_detection_confidence`` (its default), which does not filter in 0.10.14: thresholds of
0.05, 0.5 and 0.9 give the same detections, the lowest scoring 0.51. FaceMesh's face presence rejects the false ones."""
MIN_LANDMARKS = 0.3
"""FaceMesh's face presence below which the crop has no landmarks; low, because the crop is known to hold a face."""
ZOOM = 4.0
"""Side of the crop, in face boxes, where the detector looks again for a face the whole frame missed."""
HOLD_FRAMES = 25
"""Frames (1 s at 25 fps) over which the nearest detection stands in for one that even the zoomed look missed.

BlazeFace sees a 192-px copy of the frame, where a 23-px face is 12 px: at
that size it misses the face in about 6 frames of 10 (forensics_hello). The
face barely moves between frames, so the detector looks again around the
nearest box (`ZOOM`), and where it still finds nothing that box is where
FaceMesh looks; FaceMesh's own face-presence score rejects a box the face has left.
"""
TRACK_IOU = 0.3
"""Overlap with a face's last box above which a detection is that face (a face stays itself from frame to frame)."""
MAX_FACES = 3
"""Faces followed per clip: the most often found and at most two others (each costs a FaceMesh pass over the frames)."""
MIN_FOUND_SHARE = 0.25
"""Share of the frames in which the whole-frame detector must find a face for it to be followed beside the most
often found one: the detector's false faces (mediapipe does not filter them, `MIN_DETECTION`) come and go, while a small
real face stays (the 23-px webcam face of forensics_hello is found in 4 to 9 frames of 10, with where it sits on the
detector's anchor grid)."""
OPEN_STEP = 1e-4
"""Rounding of the mouth opening (a ratio of about 0.2-0.8): far coarser than kernel noise, far finer than a lip's motion."""
UPPER_LIP, LOWER_LIP, LEFT_EYE, RIGHT_EYE = 0, 17, 33, 263
"""FaceMesh's outer-lip midpoints (top of the upper lip, bottom of the lower one) and the eyes' outer corners."""


@dataclass
class FaceTrack:
    """One face over a clip: per frame, its mouth opening (NaN: not found) and box (NaN row: no face)."""

    opening: np.ndarray
    """(T,) float64 outer-lip height over eye-corner distance; NaN where no face or no landmarks."""
    boxes: np.ndarray
    """(T, 4) float64 ``[x0, y0, x1, y1]``, the landmarks' extent normalised to the frame; NaN rows without landmarks."""

    @property
    def found(self) -> float:
        """Share of frames with a mouth opening."""
        return float(np.mean(np.isfinite(self.opening))) if len(self.opening) else 0.0

    def box(self) -> list[float] | None:
        """The face's box over the clip: the median of its per-frame boxes (None: no landmarks in any frame)."""
        seen = self.boxes[np.isfinite(self.boxes[:, 0])]
        if not len(seen):
            return None
        return [float(np.clip(v, 0.0, 1.0)) for v in np.median(seen, axis=0)]


class FaceTracker:
    """Runs face detection and FaceMesh on each frame of a clip; the graphs are built once and reused."""

    def __init__(self) -> None:
        self._detector: Any = None

    def track(self, frames: np.ndarray, sharper: Callable[[], Iterator[np.ndarray]] | None = None) -> list[FaceTrack]:
        """The faces' mouth openings and boxes in each uint8 RGB frame of ``frames`` (T, H, W, 3), the most often
        found face first (module docstring); an empty list where no frame has a face.

        ``sharper`` gives the same T frames at the source's (higher) resolution, decoded one at a time; it is called
        only when a face is too small in ``frames`` for FaceMesh (module docstring), and then every face's crop is
        cut from it.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 RGB of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
        detector = self._face_detector()
        height, width = frames.shape[1:3]
        found = [_detections(detector.process(np.ascontiguousarray(frame)), width, height) for frame in frames]
        detected = _chains(found)
        paths = [list(path) for path in detected]
        for path in paths:
            seen = np.array([t for t, b in enumerate(path) if b is not None], dtype=np.int64)
            for t in np.flatnonzero([b is None for b in path]) if len(seen) else []:
                near = path[int(seen[np.argmin(np.abs(seen - t))])]
                again = _zoomed(detector, np.ascontiguousarray(frames[t]), near)
                # The zoomed crop may hold a neighbour: a box another face was detected at is that face's.
                if again is not None and any(o[t] is not None and _iou(again, o[t]) >= TRACK_IOU for o in detected):
                    again = None
                path[t] = again
        held = [
            face for face in _apart([_held(path, HOLD_FRAMES) for path in paths]) if any(b is not None for b in face)
        ]
        if not held:
            return []
        source = sharper() if sharper is not None and any(_too_small(face) for face in held) else None
        meshes: list[Any] = []
        opening = np.full((len(held), len(frames)), np.nan)
        boxes = np.full((len(held), len(frames), 4), np.nan)
        try:
            meshes.extend(self._face_mesh() for _ in held)
            for t in range(len(frames)):
                frame = frames[t] if source is None else next(source)
                size = np.array([frame.shape[1], frame.shape[0]] * 2, dtype=np.float64)
                scale = size / np.array([width, height] * 2, dtype=np.float64)  # 1 on ``frames`` themselves
                for k, mesh in enumerate(meshes):
                    if held[k][t] is not None:
                        opening[k, t], face = _mouth(mesh, np.ascontiguousarray(frame), held[k][t] * scale)
                        boxes[k, t] = face / size
        finally:
            for mesh in meshes:
                mesh.close()
            if source is not None:
                source.close()
        return [FaceTrack(opening=opening[k], boxes=boxes[k]) for k in range(len(held))]

    def _face_detector(self) -> Any:
        """The shared detector: stateless per frame."""
        if self._detector is None:
            self._detector = _solutions().face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=MIN_DETECTION
            )
        return self._detector

    @staticmethod
    def _face_mesh() -> Any:
        """A fresh FaceMesh: it tracks, so its state is per face and clip."""
        return _solutions().face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            min_detection_confidence=MIN_LANDMARKS,
            min_tracking_confidence=0.5,
        )


def _solutions() -> Any:
    """mediapipe's legacy ``solutions`` package, imported on first use."""
    try:
        from mediapipe.python import solutions
    except ImportError as exc:
        raise ImportError(f"{CPU_MODELS_MISSING}: {exc}") from exc
    return solutions


def _too_small(boxes: list[np.ndarray | None]) -> bool:
    """Whether the landmark crop of the face's median box is smaller than FaceMesh's input."""
    sides = [max(b[2] - b[0], b[3] - b[1]) for b in boxes if b is not None]
    return bool(sides) and float(np.median(sides)) * MARGIN < MESH_INPUT


def _zoomed(detector: Any, frame: np.ndarray, near: np.ndarray) -> np.ndarray | None:
    """A second look for a face the whole frame missed: the detector on a `ZOOM`-times crop around ``near``.

    ``near`` is the face's box in the nearest frame where it was found. In the
    crop, upscaled to `CROP` px, a 23-px face fills a quarter of the
    detector's input instead of a sixteenth, and the detector itself decides
    whether a face is there.
    """
    import cv2

    height, width = frame.shape[:2]
    x0, y0, x1, y1 = _square(near, ZOOM, width, height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), (CROP, CROP), interpolation=cv2.INTER_CUBIC)
    found = _detections(detector.process(crop), CROP, CROP)
    scale = np.array([(x1 - x0) / CROP, (y1 - y0) / CROP] * 2, dtype=np.float64)
    return _pick([b * scale + np.array([x0, y0, x0, y0], dtype=np.float64) for b in found], near)


def _square(box: np.ndarray, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The square of ``margin`` times ``box``'s longest side around its centre, in whole pixels inside the frame."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * margin / 2
    x0, y0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
    return x0, y0, int(min(width, np.ceil(cx + half))), int(min(height, np.ceil(cy + half)))


def _held(boxes: list[np.ndarray | None], hold: int) -> list[np.ndarray | None]:
    """Each frame's box, or the nearest frame's (the earlier one on a tie) within ``hold`` frames; None beyond."""
    seen = np.array([t for t, b in enumerate(boxes) if b is not None], dtype=np.int64)
    if not len(seen):
        return list(boxes)
    out: list[np.ndarray | None] = []
    for t, box in enumerate(boxes):
        if box is None:
            nearest = int(seen[np.argmin(np.abs(seen - t))])
            box = boxes[nearest] if abs(nearest - t) <= hold else None
        out.append(box)
    return out


def _detections(result: Any, width: int, height: int) -> list[np.ndarray]:
    """Each detected face's box in pixels ``[x0, y0, x1, y1]``, float64."""
    out = []
    for detection in result.detections or []:
        b = detection.location_data.relative_bounding_box
        x0, y0 = b.xmin * width, b.ymin * height
        out.append(np.array([x0, y0, x0 + b.width * width, y0 + b.height * height], dtype=np.float64))
    return out


def _chains(found: list[list[np.ndarray]]) -> list[list[np.ndarray | None]]:
    """The faces of a clip: each the chain of detections, frame to frame, overlapping its last box most (by
    `TRACK_IOU` at least; a detection that overlaps none starts a face). Those found in `MIN_FOUND_SHARE` of the
    frames, the most often found first, at most `MAX_FACES`; the most often found alone where none is."""
    chains: list[list[np.ndarray | None]] = []
    for t, boxes in enumerate(found):
        claimed: set[int] = set()
        for box in sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1])):
            overlaps = [(_iou(box, _last(chain)), k) for k, chain in enumerate(chains) if k not in claimed]
            best, k = max(overlaps, key=lambda o: o[0], default=(0.0, -1))  # the earlier face on a tie
            if best < TRACK_IOU:
                chains.append([None] * len(found))
                k = len(chains) - 1
            chains[k][t] = box
            claimed.add(k)
    chains.sort(key=lambda c: -sum(b is not None for b in c))  # stable: the earlier face first on a tie
    kept = [c for c in chains if sum(b is not None for b in c) >= MIN_FOUND_SHARE * len(found)]
    return kept[:MAX_FACES] if kept else chains[:1]


def _last(chain: list[np.ndarray | None]) -> np.ndarray | None:
    return next((b for b in reversed(chain) if b is not None), None)


def _apart(held: list[list[np.ndarray | None]]) -> list[list[np.ndarray | None]]:
    """Each face's boxes without those on an earlier face's box in the same frame (a zoomed look or a held box can
    land on another face)."""
    out: list[list[np.ndarray | None]] = []
    for boxes in held:
        out.append(
            [
                None if b is None or any(o[t] is not None and _iou(b, o[t]) >= TRACK_IOU for o in out) else b
                for t, b in enumerate(boxes)
            ]
        )
    return out


def _pick(boxes: list[np.ndarray], last: np.ndarray | None) -> np.ndarray | None:
    """The box overlapping ``last`` most (above `TRACK_IOU`), else the largest."""
    if not boxes:
        return None
    if last is not None:
        overlaps = [_iou(b, last) for b in boxes]
        best = int(np.argmax(overlaps))
        if overlaps[best] >= TRACK_IOU:
            return boxes[best]
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def _mouth(mesh: Any, frame: np.ndarray, box: np.ndarray) -> tuple[float, np.ndarray]:
    """(mouth opening, face box in pixels) from FaceMesh on the face's upscaled square crop; NaNs without landmarks.

    The box returned is the landmarks' extent, tighter and steadier than the detector's.
    """
    import cv2

    missing = float("nan"), np.full(4, np.nan)
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = _square(box, MARGIN, width, height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return missing
    crop = cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), (CROP, CROP), interpolation=cv2.INTER_CUBIC)
    result = mesh.process(crop)
    if not result.multi_face_landmarks:
        return missing
    marks = result.multi_face_landmarks[0].landmark
    # Landmarks are normalised to the square crop: back to frame pixels, so distances keep the source's aspect.
    xy = np.array([(m.x, m.y) for m in marks], dtype=np.float64) * [x1 - x0, y1 - y0] + [x0, y0]
    eyes = float(np.hypot(*(xy[LEFT_EYE] - xy[RIGHT_EYE])))
    if not eyes > 0:
        return missing
    opening = round(float(np.hypot(*(xy[UPPER_LIP] - xy[LOWER_LIP]))) / eyes / OPEN_STEP) * OPEN_STEP
    face = np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()], dtype=np.float64)
    return opening, np.clip(face, 0.0, [width, height, width, height])
