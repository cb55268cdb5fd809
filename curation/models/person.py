"""Person models of the cpu profile: where the person is (segmentation) and how their hands move (pose + hands).

Web video is dominated by people, and a visible person is the sound source the
signal aligner's grid of motion cells sees worst: a talking head barely moves,
and a hand that claps moves a few pixels of one cell. mediapipe 0.10.14's wheel
ships small CPU models for exactly this (``mediapipe/modules/``, Apache-2.0,
nothing downloaded at run time), run through its legacy ``solutions`` API:

* a person is a face: short-range face detection over overlapping tiles (so
  that a 25-px face in a webcam inset is big enough for the detector's 128-px
  input), confident (score >= `FACE_SCORE`) in at least half the sampled
  frames. The other models find people everywhere on their own: the pose model
  gave a LEGO model visible wrists in 135 of 138 frames, selfie segmentation
  masked 14 % of that frame, the hand model found hands in a room with plants;
* `PersonSegmenter`: the person's mask, the sample's segmentation label when
  the sound is a visible person, from the pose model's segmentation on a crop
  around each face. Not selfie segmentation: on the webcam inset it either
  misses the person (crop too wide) or paints a body below the inset's edge
  (crop tight), where the pose model's mask stays inside the inset;
* `BodyMotion`: hand landmarks on every frame, kept where the pose puts a
  wrist, give a hand-motion envelope in hand sizes per second, which the
  signal aligner compares with the audio onset envelope beside its motion
  cells (`curation.signal_aligner.MotionSource`, wired in `curation.cue_aligner`).

mediapipe is imported lazily: the module imports without it. Limits and
measured costs: docs/alignment.md, "Person models".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation.models.person_faces import FACE_SCORE, Box, face_detector, person_faces

CROP_SCALES = (2.5, 3.0, 3.5)
"""Each face is segmented on three crops: ``k`` face sizes either side, ``k / 2`` above, ``k + 1`` below (the
upper body). On the webcam inset the pose model finds the person in 1 to 4 of 5 frames on any one crop, which
crop varying with a pixel's shift of the face box; over three it found it in 6 of 15 and 11 of 15 runs."""
MIN_FOUND = 0.2
"""Share of a face's runs (frames x crops) the pose model must find a person in for the face to get a mask."""
AT_WRIST = 2.0
"""A hand counts when its wrist is within this many hand sizes of a wrist of the pose."""


@dataclass(frozen=True)
class PersonMask:
    """A clip's person mask, or None with the reason (no person found)."""

    mask: np.ndarray | None
    """``(H, W)`` float64 at the frames' resolution: the pose model's person probability (its mean over the runs
    that found a body) where it reaches the threshold, else 0."""
    box: Box | None
    share: float
    """Share of the frame the mask covers, in [0, 1]."""
    reason: str | None


@dataclass(frozen=True, eq=False)
class Hand:
    """One hand in one frame: its landmarks in pixels and its size (pixels), the unit of its speed."""

    points: np.ndarray
    size: float


@dataclass(frozen=True)
class BodyTrack:
    """Hand motion over a clip's frames, from `BodyMotion.track`."""

    speed: np.ndarray
    """``(T,)`` float64, hand sizes per second summed over the hands; NaN where no hand is matched in t and t - 1."""
    presence: float
    """Share of frames with at least one hand."""
    box: Box | None
    """Box around every hand landmark of the clip, normalised; None with ``reason``."""
    reason: str | None

    def candidates(self) -> np.ndarray:
        """``(T, 2)`` columns for the correlation: speed and impact, with 0 where no hand was seen.

        Speed peaks while a hand swings, impact when it stops: a clap or a drum
        hit sounds at the stop. Impact at t is the drop from ``speed[t]`` (the
        move into frame t) to ``speed[t + 1]``, so a stop is dated at the first
        frame that shows the hand arrived. A hand not seen is no visible motion,
        hence 0, as a static cell's motion is.
        """
        following = np.concatenate([self.speed[1:], [np.nan]])
        impact = np.maximum(self.speed - following, 0.0)
        return np.nan_to_num(np.stack([self.speed, impact], axis=1), nan=0.0)


class PersonSegmenter:
    """The person mask of a clip: the pose model's segmentation on a crop around each confirmed face."""

    name = "mediapipe-0.10.14-pose-segmentation"

    def __init__(self, frames: int = 5, threshold: float = 0.5, min_share: float = 0.002) -> None:
        """``frames`` evenly spaced frames are averaged; a mask below ``min_share`` of the frame is no person.

        Averaging a few frames rather than taking one keeps a person the model
        loses in one frame, and drops what it finds in only one.
        """
        if frames < 1 or not 0.0 < threshold < 1.0 or not 0.0 <= min_share < 1.0:
            raise ValueError(
                "PersonSegmenter: need frames >= 1, 0 < threshold < 1, 0 <= min_share < 1, got "
                f"{frames}, {threshold}, {min_share}"
            )
        self.frames, self.threshold, self.min_share = int(frames), float(threshold), float(min_share)
        self._models: tuple[Any, Any] | None = None

    def segment(self, frames: np.ndarray) -> PersonMask:
        """The person mask of ``frames`` (uint8 RGB ``(T, H, W, 3)``), or None with the reason."""
        frames = _rgb_frames(frames)
        detector, pose = self._load()
        sampled = [np.ascontiguousarray(frames[i]) for i in _spaced(len(frames), self.frames)]
        height, width = sampled[0].shape[:2]
        faces = person_faces(detector, sampled)
        if not faces:
            return PersonMask(
                None,
                None,
                0.0,
                f"no person: no face scores {FACE_SCORE:g} in half of {len(sampled)} evenly spaced frames",
            )
        mean = np.zeros((height, width), dtype=np.float64)
        for face in faces:
            total, found = np.zeros((height, width), dtype=np.float64), 0
            for x0, y0, x1, y1 in (_crop(face, scale, width, height) for scale in CROP_SCALES):
                for frame in sampled:
                    part = pose.process(np.ascontiguousarray(frame[y0:y1, x0:x1])).segmentation_mask
                    if part is not None:
                        total[y0:y1, x0:x1] += np.clip(part, 0.0, 1.0)
                        found += 1
            if found >= MIN_FOUND * len(CROP_SCALES) * len(sampled):
                mean = np.maximum(mean, total / found)  # the mean over the runs that found the person
        inside = mean >= self.threshold
        share = float(np.count_nonzero(inside)) / inside.size
        if share < self.min_share or not inside.any():
            return PersonMask(
                None,
                None,
                share,
                f"no person: {len(faces)} faces, but the pose model's mask "
                f"(probability >= {self.threshold:g} in the runs that found a body) covers {share:.2%} "
                f"of the frame, less than {self.min_share:.2%}",
            )
        ys, xs = np.nonzero(inside)
        box = (xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height)
        return PersonMask(
            np.where(inside, mean, 0.0), (float(box[0]), float(box[1]), float(box[2]), float(box[3])), share, None
        )

    def _load(self) -> tuple[Any, Any]:
        """The face detector and the pose model with its segmentation, one image at a time (no tracking)."""
        if self._models is None:
            from mediapipe.python.solutions import pose

            self._models = (face_detector(), pose.Pose(static_image_mode=True, enable_segmentation=True))
        return self._models


class BodyMotion:
    """Hand landmarks (mediapipe hands, confirmed by the pose's wrists) on every frame, as a motion envelope."""

    name = "mediapipe-0.10.14-pose-hands"

    def __init__(self, probe_frames: int = 5) -> None:
        """``probe_frames`` evenly spaced frames are searched first: a clip with no face or no hand is not tracked.

        Tracking every frame costs tens of ms each (docs/alignment.md); most
        clips show no hands, and the probe turns them away for a few frames' cost.
        """
        if probe_frames < 1:
            raise ValueError(f"BodyMotion: probe_frames must be >= 1, got {probe_frames}")
        self.probe_frames = int(probe_frames)
        self._models: tuple[Any, Any, Any] | None = None

    def track(self, frames: np.ndarray, fps: float) -> BodyTrack:
        """The hand motion of ``frames`` (uint8 RGB ``(T, H, W, 3)`` at ``fps``)."""
        frames = _rgb_frames(frames)
        if not fps > 0:
            raise ValueError(f"BodyMotion.track: fps must be > 0, got {fps!r}")
        unseen = np.full(len(frames), np.nan)
        probe = [np.ascontiguousarray(frames[i]) for i in _spaced(len(frames), self.probe_frames)]
        if not person_faces(self._load()[2], probe):
            return BodyTrack(
                unseen,
                0.0,
                None,
                f"no person: no face scores {FACE_SCORE:g} in half of "
                f"{len(probe)} evenly spaced frames, and hands are only counted on a person",
            )
        self._reset()
        if not any(self._hands(frame) for frame in probe):
            return BodyTrack(unseen, 0.0, None, f"no hand at a pose's wrist in {len(probe)} evenly spaced frames")
        self._reset()
        per_frame = [self._hands(frame) for frame in frames]
        self._reset()
        points = [hand.points for hands in per_frame for hand in hands]
        if not points:
            return BodyTrack(unseen, 0.0, None, f"no hand at a pose's wrist in the {len(frames)} frames")
        height, width = frames.shape[1:3]
        every = np.concatenate(points)
        x0, y0 = np.clip(every.min(axis=0) / (width, height), 0.0, 1.0)
        x1, y1 = np.clip(every.max(axis=0) / (width, height), 0.0, 1.0)
        presence = sum(1 for hands in per_frame if hands) / len(frames)
        return BodyTrack(hand_speed(per_frame, fps), presence, (float(x0), float(y0), float(x1), float(y1)), None)

    def _hands(self, frame: np.ndarray) -> list[Hand]:
        """The hand model's hands of one frame that lie at one of the pose's wrists (within `AT_WRIST` hand sizes).

        Each model alone sees hands that are not there: the palm detector in a
        room with plants, the pose (which always guesses both wrists, with a
        visibility up to 0.89 for wrists below a webcam's picture) in a LEGO
        model. A hand both agree on, on a person with a face, is a hand.
        """
        hands_model, pose_model, _ = self._load()
        height, width = frame.shape[:2]
        image = np.ascontiguousarray(frame)
        found = hands_model.process(image).multi_hand_landmarks or []
        pose = pose_model.process(image).pose_landmarks if found else None
        if pose is None:
            return []
        wrists = [np.array((pose.landmark[i].x * width, pose.landmark[i].y * height)) for i in (15, 16)]
        out = []
        for landmarks in found:
            pts = np.array([(p.x * width, p.y * height) for p in landmarks.landmark], dtype=np.float64)
            hand = Hand(pts, _distance(pts[0], pts[9]))  # wrist to middle-finger knuckle
            if hand.size > 1.0 and min(_distance(pts[0], w) for w in wrists) <= AT_WRIST * hand.size:
                out.append(hand)
        return out

    def _load(self) -> tuple[Any, Any, Any]:
        """Hands (two, full model), pose (the full model: the only one in the wheel), tracking; the face detector.

        Landmark smoothing is off: its filter assumes 30 fps and delays slow
        motion, and timing is what the envelope is for.
        """
        if self._models is None:
            from mediapipe.python.solutions import hands, pose

            self._models = (
                hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1),
                pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=False),
                face_detector(),
            )
        return self._models

    def _reset(self) -> None:
        """Forget the tracked hands and pose, so that one clip's frames never steer the next's."""
        for model in self._load()[:2]:
            model.reset()


def hand_speed(per_frame: Sequence[Sequence[Hand]], fps: float) -> np.ndarray:
    """``(T,)`` summed speed of the hands in hand sizes per second; NaN in frames where no hand is matched.

    Each hand of frame t is matched to the hand of frame t - 1 whose wrist is
    nearest, if it is nearest that one in turn: identities are not trusted,
    mediapipe's handedness label flips. Its speed is the mean displacement of
    its points over its size: hand sizes, so a hand far from the camera moves
    as much as a near one. Frame 0 and a hand with no match contribute nothing.
    """
    speed = np.full(len(per_frame), np.nan, dtype=np.float64)
    for t in range(1, len(per_frame)):
        total, matched = 0.0, False
        for hand in per_frame[t]:
            near = _nearest(hand, per_frame[t - 1])
            if near is None or _nearest(near, per_frame[t]) is not hand:
                continue  # a hand new in frame t: its nearest hand of t - 1 is another's
            step = np.sqrt(np.sum((hand.points - near.points) ** 2, axis=1))
            total += float(np.sum(step)) / len(step) / hand.size * fps
            matched = True
        if matched:
            speed[t] = total
    return speed


def _nearest(hand: Hand, others: Sequence[Hand]) -> Hand | None:
    """The hand of ``others`` whose wrist is nearest ``hand``'s, or None."""
    return min(others, key=lambda h: _distance(h.points[0], hand.points[0]), default=None)


def _rgb_frames(frames: np.ndarray) -> np.ndarray:
    """``frames`` as given, or a clear error: these models read uint8 RGB ``(T, H, W, 3)``."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"frames: expected uint8 RGB (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
    return frames


def _spaced(n: int, k: int) -> list[int]:
    """``k`` evenly spaced frame indices of ``n`` (all of them when ``n <= k``), first and last included."""
    return sorted({int(i) for i in np.linspace(0, n - 1, min(n, k)).round()})


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.sum((a - b) ** 2)))


def _crop(face: Box, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The upper-body crop at ``scale`` (`CROP_SCALES`) around a face box, in whole pixels inside the frame."""
    size = max(face[2] - face[0], face[3] - face[1])
    centre = (face[0] + face[2]) / 2
    x0, x1 = centre - scale * size, centre + scale * size
    y0, y1 = face[1] - scale / 2 * size, face[3] + (scale + 1) * size
    return (max(0, math.floor(x0)), max(0, math.floor(y0)), min(width, math.ceil(x1)), min(height, math.ceil(y1)))
