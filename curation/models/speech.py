"""Speech activity from Silero VAD, whose ONNX model ships inside the ``silero-vad`` wheel (MIT).

The model scores each 32-ms chunk (512 samples at 16 kHz) with the probability
that it holds speech, carrying a recurrent state from chunk to chunk; the
state is reset per clip, so a clip's result never depends on the one before.
silero-vad (and torch, which its wrapper uses) is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.models import CPU_MODELS_MISSING

CHUNK = 512
"""Samples per VAD decision at 16 kHz (32 ms): the only chunk size the 16-kHz model takes."""
SPEECH_PROBABILITY = 0.5
"""A chunk at or above this probability is speech (Silero's own default threshold)."""
PROB_STEP = 1e-4
"""Rounding of the probabilities, so that ONNX Runtime's CPU-dependent last bits cannot reach a decision."""


@dataclass
class SpeechActivity:
    """Per-frame speech probability and the clip's share of speech."""

    frames: np.ndarray
    """(T,) float64 speech probability at each video frame's time, in [0, 1]."""
    share: float
    """Share of the clip's 32-ms chunks at or above `SPEECH_PROBABILITY`."""

    def mask(self) -> np.ndarray:
        """(T,) bool: the frames where someone speaks."""
        return self.frames >= SPEECH_PROBABILITY


class SpeechDetector:
    """Silero VAD on a clip's 16 kHz mono audio; the ONNX session is loaded once and reused."""

    def __init__(self) -> None:
        self._model: Any = None

    def activity(self, audio: np.ndarray, fps: float, n_frames: int) -> SpeechActivity:
        """Speech probability on the ``n_frames`` video frame times (at ``fps``) of ``audio`` (16 kHz mono)."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        if len(audio) < CHUNK:
            return SpeechActivity(np.zeros(n_frames), 0.0)
        try:
            import torch
        except ImportError as exc:
            raise ImportError(f"{CPU_MODELS_MISSING}: {exc}") from exc

        with torch.no_grad():
            probs = self._vad().audio_forward(torch.from_numpy(audio.copy()), AUDIO_SAMPLE_RATE).numpy().reshape(-1)
        probs = np.round(probs.astype(np.float64) / PROB_STEP) * PROB_STEP
        centres = (np.arange(len(probs)) * CHUNK + CHUNK / 2) / AUDIO_SAMPLE_RATE
        on_frames = np.interp(np.arange(n_frames) / fps, centres, probs)
        return SpeechActivity(on_frames, float(np.mean(probs >= SPEECH_PROBABILITY)))

    def _vad(self) -> Any:
        if self._model is None:
            try:
                from silero_vad import load_silero_vad
            except ImportError as exc:
                raise ImportError(f"{CPU_MODELS_MISSING}: {exc}") from exc
            self._model = load_silero_vad(onnx=True)
        return self._model
