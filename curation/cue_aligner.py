"""The cpu profile's aligner, ``cues-v2``: the voice against the lips where someone speaks on screen, and hands.

Web video is mostly people, and the onset-motion correlation of
`curation.signal_aligner` cannot see speech (docs/alignment.md). This aligner
runs two small pretrained models that ship inside their PyPI wheels, no
download at run time:

1. Silero VAD (`curation.models.speech`) on the audio: is there speech?
2. where there is, mediapipe's face detection and FaceMesh
   (`curation.models.faces`) on the frames: is a face visible, and how open is
   its mouth in each frame?

Speech with a visible face goes the **lip path** (`curation.lipsync`): the
sync offset, its confidence, the instance score (the voice's correlation with
the lips at its best lag of audio late by up to 0.185 s, over its chance level) and the 1-s temporal windows all come
from the voice against the mouth (of several faces, the one whose lips the
voice follows best: the speaker, not a listener), and the localization label is
the speaking face's box, its mask the person's segmentation (`curation.models.person`,
mediapipe's pose segmentation around the confirmed face). Everything else (no speech, or speech with no face on screen:
narration, a voice-over) goes the ``signal-v1`` method, with one more candidate
beside its motion cells: the hands of a person on screen
(`curation.models.person.BodyMotion`: mediapipe's hand landmarks at the pose's
wrists, on a person whose face is found), their speed and their stops. A clap,
a drum hit or a plucked string is a hand that moves with the sound; when the
hands are the best candidate and beat chance, their box is the localization
label and the person's segmentation the mask.

The class label (AudioSet's names and ids, `curation/models/audioset_labels.csv`)
is what the models can tell: "Speech" for speech with a visible speaking face,
"Narration, monologue" for speech with none; otherwise none, with the reason.
Its score is the share of the clip the VAD calls speech.

The face tracking, the hands and the person mask of a clip are kept for the next call on
the very same frames array: re-alignment (`curation.analyse.realign_all`) and
the benchmark's variants shift only the audio, so they are computed once per
clip.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import av
import numpy as np

from curation import decode, lipsync
from curation.models import faces, speech
from curation.models.imagebind_aligner import LABELS_FILE, load_labels
from curation.models.person import BodyMotion, BodyTrack, PersonSegmenter
from curation.records import Clip
from curation.roles import Analysis, Score
from curation.signal_aligner import (
    LANGUAGE_REASON,
    MIN_OVERLAP_SECONDS,
    MIN_SYNC_SECONDS,
    MotionSource,
    SignalAligner,
    degenerate,
)

MIN_SPEECH_SECONDS = 1.0
"""Seconds of speech the VAD must hear for a clip to be speech: more than the 0.9 s it hears in the music of
bbb_excerpt, less than the 1.9 s of forensics_hello's excerpt (set on those clips, the only ones here)."""
MIN_FACE_SHARE = 0.5
"""Share of the speech frames in which the mouth must be found for the lip path (else the face is not visible)."""
SPEECH_LABEL, NARRATION_LABEL = "Speech", "Narration, monologue"
LIPS_CUE, SIGNAL_CUE = "lips", "signal"
"""`Analysis.cue` of the two paths: their raw values are calibrated with separate maps."""
T = TypeVar("T")
log = logging.getLogger(__name__)
HANDS_REASON = "hands move with the sound, but the cpu profile has no model that names what they play or hit"


class CueAligner:
    """The ``cues-v2`` `Aligner`: lip synchrony for on-screen speech, ``signal-v1`` for the rest.

    ``name`` is the aligner's version, what a calibration (`curation.calibration`) is fitted for; the models it
    runs and their licences are listed in `curation/models/cpu_models.csv` (the card's model table).
    """

    name = "cues-v2"

    def __init__(self, max_offset: float = 1.0, silence_dbfs: float = -60.0) -> None:
        if max_offset < 0:
            raise ValueError(f"max_offset must be >= 0, got {max_offset}")
        self.max_offset = float(max_offset)
        self.silence_dbfs = float(silence_dbfs)
        self.signal = SignalAligner(max_offset=max_offset, silence_dbfs=silence_dbfs)
        self.speech = speech.SpeechDetector()
        self.faces = faces.FaceTracker()
        self.person = PersonSegmenter()
        self.body = BodyMotion()
        labels = load_labels(LABELS_FILE)
        self._labels = {name: labels.index(name) for name in (SPEECH_LABEL, NARRATION_LABEL)}
        self._kept: dict[str, tuple[np.ndarray, Any]] = {}

    def analyse(self, clip: Clip, caption: str | None) -> Analysis:
        """Score ``clip`` on the lip path or the signal path (module docstring); ``caption`` is unused."""
        reason = degenerate(clip, self.silence_dbfs)
        if reason is not None:
            return replace(Analysis.missing(reason, LANGUAGE_REASON), category_reason=reason)
        n_frames, fps = len(clip.frames), float(clip.fps)
        voice = self.speech.activity(clip.audio, fps, n_frames)
        heard = voice.share * n_frames / fps
        if heard < MIN_SPEECH_SECONDS:
            why = f"no speech: the VAD hears {heard:.1f} s of speech (< {MIN_SPEECH_SECONDS:g} s)"
            return self._signal(clip, None, f"{why}; the cpu profile names speech only")
        spoken = voice.mask()
        visible = [track for track in self._tracks(clip) if _seen(track, spoken) >= MIN_FACE_SHARE]
        if not visible:
            return self._signal(clip, self._category(NARRATION_LABEL, voice.share), None)
        return self._lips(clip, visible, spoken, voice.share)

    def _signal(self, clip: Clip, category: tuple[str, int, float] | None, category_reason: str | None) -> Analysis:
        """The ``signal-v1`` analysis with the person's hands as a candidate; the mask is the person's where they win."""
        body = self._body(clip.frames, float(clip.fps))
        source = None if body.box is None else MotionSource("hands", body.candidates(), body.box)
        analysis = replace(
            self.signal.analyse(clip, None, source), category=category, category_reason=category_reason, cue=SIGNAL_CUE
        )
        if analysis.box is None:
            return analysis
        mask, mask_reason = self._mask(clip.frames)
        return replace(
            analysis,
            mask=mask,
            mask_reason=mask_reason,
            category_reason=None if category is not None else f"{category_reason}; {HANDS_REASON}",
        )

    def _lips(self, clip: Clip, visible: list[faces.FaceTrack], spoken: np.ndarray, share: float) -> Analysis:
        """The lip path's analysis: offset, instance and windows from the voice against the speaker's mouth; the
        speaker's box. Of several visible faces the speaker is the one whose lips the voice follows best at any lag
        (`lipsync.LipSync.peak`; the first face on a tie): a listener's lips do not follow it."""
        fps, n_frames = float(clip.fps), len(clip.frames)
        duration = float(clip.duration) if clip.duration > 0 else n_frames / fps
        envelope = lipsync.speech_envelope(clip.audio, fps, n_frames)
        readings = []
        for track in visible:
            mouth = lipsync.mouth_series(track.opening)
            readings.append(
                (track, mouth, lipsync.lip_sync(envelope, mouth, fps, self.max_offset, MIN_OVERLAP_SECONDS))
            )
        track, mouth, sync = max(readings, key=lambda r: -math.inf if r[2].peak is None else r[2].peak)
        offset, confidence, sync_reason = sync.offset, sync.confidence, sync.reason
        if duration < MIN_SYNC_SECONDS:
            offset, confidence = None, None
            sync_reason = f"clip shorter than {MIN_SYNC_SECONDS:g} s: too short for the offset search"
        if sync.raw is None:
            instance = Score.missing("too few frames with both a mouth and audio to correlate")
        else:
            instance = Score(score=lipsync.instance_score(sync), raw=sync.raw)
        temporal = lipsync.windows(envelope, mouth, fps, duration, spoken, instance.score or 0.0, sync.instance_lag)
        mask, mask_reason = self._mask(clip.frames)
        return Analysis(
            language=Score.missing(LANGUAGE_REASON),
            instance=instance,
            temporal_windows=temporal or None,
            temporal_reason=None if temporal else "clip shorter than 0.5 s: no temporal window",
            sync_offset=offset,
            sync_confidence=confidence,
            sync_reason=sync_reason,
            heatmap=None,
            heatmap_reason="the lip path localizes the speaking face (box), not a heatmap",
            category=self._category(SPEECH_LABEL, share),
            category_reason=None,
            box=track.box(),
            mask=mask,
            mask_reason=mask_reason,
            cue=LIPS_CUE,
        )

    def _category(self, label: str, share: float) -> tuple[str, int, float]:
        return label, self._labels[label], share

    def _mask(self, frames: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """The speaking person's mask of ``frames`` (or None and why)."""
        person = self._once("person", frames, self.person.segment)
        return person.mask, person.reason

    def _body(self, frames: np.ndarray, fps: float) -> BodyTrack:
        """The hands of ``frames``."""
        return self._once("hands", frames, lambda f: self.body.track(f, fps))

    def _tracks(self, clip: Clip) -> list[faces.FaceTrack]:
        """The face tracks of the clip's frames; a small face's mouth is read from the source's frames, if larger."""
        return self._once("faces", clip.frames, lambda frames: self._face_tracks(clip))

    def _face_tracks(self, clip: Clip) -> list[faces.FaceTrack]:
        source, (height, width) = clip.source, clip.frames.shape[1:3]
        if source is None or source.width * source.height <= width * height:
            return self.faces.track(clip.frames)
        try:
            return self.faces.track(
                clip.frames, lambda: decode.source_frames(source, float(clip.fps), len(clip.frames))
            )
        except (OSError, ValueError, av.FFmpegError) as exc:
            log.warning(
                "%s: the mouth is read from the written frames: the source's frames did not decode again (%s)",
                clip.item.recorded,
                exc,
            )
            return self.faces.track(clip.frames)

    def _once(self, model: str, frames: np.ndarray, run: Callable[[np.ndarray], T]) -> T:
        """``run(frames)``, reused when the very same array comes again: re-alignment and the benchmark's variants
        shift only the audio. One clip is kept per model."""
        kept = self._kept.get(model)
        if kept is None or kept[0] is not frames:
            kept = self._kept[model] = (frames, run(frames))
        return kept[1]


def _seen(track: faces.FaceTrack, spoken: np.ndarray) -> float:
    """Share of the speech frames in which ``track`` has a mouth."""
    return float(np.mean(np.isfinite(track.opening[spoken]))) if spoken.any() else 0.0
