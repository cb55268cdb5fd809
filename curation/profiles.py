"""Profiles: which implementation plays each model role.

* ``cpu``: small pretrained models that ship inside PyPI wheels, nothing
  downloaded at run time. Alignment comes from the voice against the lips where
  a face speaks (Silero VAD, mediapipe's face and pose models) and from the
  signals themselves elsewhere (`curation.cue_aligner`). Whisper tiny.en transcribes, SmolLM2-135M (llama.cpp;
  the extractive condenser when llama.cpp is missing) condenses the manifest
  text and the transcript into the caption, MiniLM scores the caption against
  what the clip's models heard and recognised (`curation.models.language`).
  Each is left out, with a warning, when its package is not installed. Their
  licences: `curation/models/cpu_models.csv` (`curation.models.licences`).
* ``paper``: Algorithm 1's stack. Video-LLaVA describes each clip, an LLM
  behind an OpenAI-compatible endpoint condenses the descriptions (falling
  back to the configured offline condensers when the endpoint is missing or
  down), Whisper transcribes the speech, and ImageBind scores the alignment
  and derives the task labels. See docs/models.md.

The ``paper`` profile's settings and where they come from are in
`curation.paper_settings`.

Heavy libraries are imported lazily, inside the model classes, so the base
install imports this module and runs ``cpu``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curation.config import CurationConfig
from curation.paper_settings import PaperSettings, load_paper_settings
from curation.roles import Aligner, Captioner, Condenser, LanguageScorer, Transcriber

log = logging.getLogger(__name__)

PROFILES = ("cpu", "paper")


@dataclass
class Profile:
    name: str
    aligner: Aligner
    captioner: Captioner | None = None
    condenser: Condenser | None = None
    transcriber: Transcriber | None = None
    language: LanguageScorer | None = None
    """Scores the caption when the aligner does not (`curation.analyse.run_model_stages`)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The resolved settings the models were built from (no secrets), for the release's report."""

    def models(self) -> dict[str, str | None]:
        """Role → model name, as recorded in every sample's ``pipeline.models``.

        ``embedder`` is the model behind the alignment scores: the aligner's (ImageBind), else the language
        scorer's text embedder (MiniLM in the cpu profile).
        """
        embedder = getattr(self.aligner, "embedder_name", None) or (self.language.name if self.language else None)
        return {
            "captioner": self.captioner.name if self.captioner else None,
            "condenser": self.condenser.name if self.condenser else None,
            "transcriber": self.transcriber.name if self.transcriber else None,
            "embedder": embedder,
            "aligner": self.aligner.name,
        }


def profile_settings(config: CurationConfig) -> dict[str, Any]:
    """The resolved model settings of ``config.profile`` (no secrets), without loading any model.

    Part of a run's fingerprint: a rerun with another checkpoint or endpoint model is another run, not a resume.
    """
    return load_paper_settings().to_dict() if config.profile == "paper" else {}


def aligner_name(config: CurationConfig) -> str:
    """The name of ``config.profile``'s aligner, without loading any model (its calibration is looked up by it)."""
    if config.profile == "cpu":
        from curation.cue_aligner import CueAligner

        return CueAligner.name
    if config.profile == "paper":
        from curation.models.imagebind_aligner import ImageBindAligner

        return ImageBindAligner.name
    raise ValueError(f"config: unknown profile {config.profile!r} (known: {', '.join(PROFILES)})")


def build_profile(config: CurationConfig, overrides: dict[str, Any] | None = None) -> Profile:
    """The profile named by ``config.profile`` (``overrides``: `PaperSettings` fields, plus ``config_file``)."""
    if config.profile == "cpu":
        from curation.cue_aligner import CueAligner

        return _with_cpu_models(
            Profile("cpu", aligner=CueAligner(max_offset=config.max_offset, silence_dbfs=config.silence_dbfs))
        )
    if config.profile == "paper":
        return _paper(config, load_paper_settings(overrides))
    raise ValueError(f"config: unknown profile {config.profile!r} (known: {', '.join(PROFILES)})")


# --------------------------------------------------------------------------- cpu

CPU_TEXT_MODELS = PaperSettings(
    captioner="none",
    condenser="llama_cpp",
    condenser_fallback=("extractive",),
    condenser_max_tokens=80,
    condenser_cache_dir="none",
    transcriber="bundled",
)
"""The cpu profile's transcriber and condensers, built by the paper profile's code. 80 new tokens: a caption of
one or two sentences needs fewer, and SmolLM2-135M runs on; no cache: a 135M model answers in under a second."""


def _with_cpu_models(profile: Profile) -> Profile:
    s = CPU_TEXT_MODELS
    return replace(profile, condenser=_condenser(s, "cpu"), transcriber=_transcriber(s, "cpu"), language=_language())


def _language() -> LanguageScorer | None:
    """MiniLM's language score (loaded on first use), or None with a warning when MiniLM is not installed."""
    import importlib.util

    from curation.models.text import minilm_path

    if importlib.util.find_spec("sentence_transformers") is None:
        log.warning("cpu profile: sentence-transformers is not installed; no language score")
        return None
    try:
        minilm_path()
    except FileNotFoundError as exc:
        log.warning("cpu profile: no language score: %s", exc)
        return None
    from curation.models.language import MiniLMLanguageScorer

    return MiniLMLanguageScorer()


# --------------------------------------------------------------------------- paper


def _paper(config: CurationConfig, s: PaperSettings) -> Profile:
    from curation.models.imagebind import ImageBindEmbedder
    from curation.models.imagebind_aligner import AlignerSettings, ImageBindAligner, load_labels

    device = s.device or config.device
    captioner = _captioner(s, device, config.batch_size)  # cheap checks first, then the big model
    if not s.embedder_checkpoint:
        raise ValueError(
            "paper profile: set embedder_checkpoint (or ACAV1M_IMAGEBIND_CHECKPOINT) to an ImageBind .pth, "
            "'download' to fetch the official weights, or 'random' for tests"
        )
    embedder = ImageBindEmbedder.build(
        s.embedder_arch,
        s.embedder_checkpoint,
        device=device,
        dtype=s.embedder_dtype or _default_dtype(device),
        max_batch=s.embedder_max_batch,
        compile=s.embedder_compile,
    )
    labels = load_labels(s.labels_file) if s.labels_file else load_labels()
    aligner = ImageBindAligner(
        embedder, labels, AlignerSettings(max_offset=config.max_offset, offset_step=s.offset_step, crops=s.crops)
    )
    return Profile(
        "paper",
        aligner=aligner,
        captioner=captioner,
        condenser=_condenser(s),
        transcriber=_transcriber(s),
        settings=s.to_dict(),
    )


def _default_dtype(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"


def _captioner(s: PaperSettings, device: str, batch_size: int) -> Captioner | None:
    if not s.captioner or s.captioner == "none":
        return None
    if s.captioner_base_url:
        return _served_captioner(s)
    from curation.models.videollava import DEFAULT_PROMPT, VideoLlavaCaptioner

    folder = Path(s.captioner).expanduser()
    if (s.captioner.startswith(("/", ".", "~")) or s.captioner_local_files_only) and not folder.is_dir():
        # fail at start-up: a lazy load would fail on every clip and write a release of null captions
        raise FileNotFoundError(f"paper profile: Video-LLaVA folder {s.captioner} not found")
    return VideoLlavaCaptioner(
        str(folder) if folder.is_dir() else s.captioner,
        device=device,
        dtype=s.captioner_dtype or _default_dtype(device),
        num_frames=s.captioner_frames,
        prompt=s.captioner_prompt or DEFAULT_PROMPT,
        max_new_tokens=s.captioner_max_new_tokens,
        batch_size=batch_size,
        local_files_only=s.captioner_local_files_only,
    )


def _served_captioner(s: PaperSettings) -> Captioner:
    """The VLM behind ``captioner_base_url``, with the condenser's endpoint policy (timeout, retries, circuit, cache)."""
    from curation.models.captioner_openai import OpenAICaptioner
    from curation.models.videollava import DEFAULT_PROMPT

    return OpenAICaptioner(
        s.captioner,
        s.captioner_base_url,
        os.environ.get("ACAV1M_CAPTIONER_API_KEY"),
        num_frames=s.captioner_frames,
        prompt=s.captioner_prompt or DEFAULT_PROMPT,
        max_tokens=s.captioner_max_new_tokens,
        max_concurrency=s.captioner_concurrency,
        **_endpoint_policy(s),
    )


def _endpoint_policy(s: PaperSettings) -> dict[str, Any]:
    """What every OpenAI-compatible endpoint (condenser, served captioner) is called with: timeout, retries, the
    circuit breaker and the answer cache."""
    return {
        "timeout": s.condenser_timeout,
        "max_retries": s.condenser_max_retries,
        "circuit_failures": s.condenser_circuit_failures,
        "circuit_cooldown": s.condenser_circuit_cooldown,
        "cache_dir": _cache_dir(s),
    }


def _cache_dir(s: PaperSettings) -> str | None:
    if s.condenser_cache_dir == "none":
        return None
    return s.condenser_cache_dir or str(Path.home() / ".cache" / "acav1m" / "condenser")


def _one_condenser(name: str, s: PaperSettings) -> Condenser:
    """One condenser by name; raises with the reason when it cannot be built here."""
    from curation.models.condenser_offline import ExtractiveCondenser, LlamaCppCondenser
    from curation.models.condenser_openai import OpenAICondenser

    if name == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        if not s.condenser_model:
            raise ValueError("no model: set condenser_model or ACAV1M_CONDENSER_MODEL")
        if not key and not s.condenser_base_url:
            raise ValueError("neither OPENAI_API_KEY nor an endpoint (OPENAI_BASE_URL) is set")
        return OpenAICondenser(
            s.condenser_model,
            s.condenser_base_url,
            key,
            max_concurrency=s.condenser_concurrency,
            max_tokens=s.condenser_max_tokens,
            **_endpoint_policy(s),
        )
    if name == "llama_cpp":
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:
            raise ImportError("llama-cpp-python is not installed")
        return LlamaCppCondenser(s.llama_cpp_model, max_tokens=s.condenser_max_tokens, cache_dir=_cache_dir(s))
    if name == "extractive":
        if s.extractive_embedder == "minilm":
            from curation.models.text import MiniLMEmbedder

            return ExtractiveCondenser(embedder=MiniLMEmbedder())
        return ExtractiveCondenser()
    raise ValueError(f"unknown condenser {name!r}")


def _condenser(s: PaperSettings, profile: str = "paper") -> Condenser | None:
    """The primary condenser followed by the fallbacks that can be built; an error when none can."""
    if s.condenser == "none":
        return None
    from curation.models.condenser import FallbackCondenser

    chain, problems = [], []
    for name in dict.fromkeys((s.condenser, *s.condenser_fallback)):
        if name == "none":
            continue
        try:
            chain.append(_one_condenser(name, s))
        except (ValueError, ImportError, FileNotFoundError) as exc:
            problems.append(f"{name}: {exc}")
            log.warning("%s profile: condenser %s unavailable: %s", profile, name, exc)
    if not chain:
        raise ValueError(f"{profile} profile: no condenser can run ({'; '.join(problems)})")
    return chain[0] if len(chain) == 1 else FallbackCondenser(chain)


def _transcriber(s: PaperSettings, profile: str = "paper") -> Transcriber | None:
    if not s.transcriber or s.transcriber == "none":
        return None
    import importlib.util

    from curation.models.whisper import WhisperTranscriber

    if importlib.util.find_spec("faster_whisper") is None:
        log.warning("%s profile: faster-whisper is not installed; no transcripts", profile)
        return None
    try:
        model = None if s.transcriber == "bundled" else s.transcriber
        return WhisperTranscriber(model, device=s.transcriber_device, compute_type=s.transcriber_compute_type)
    except FileNotFoundError as exc:
        log.warning("%s profile: no transcriber: %s", profile, exc)
        return None
