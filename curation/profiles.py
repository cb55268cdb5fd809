"""Profiles: which implementation plays each model role.

The ``cpu`` profile needs no model weights: captions come from the manifest and
alignment from the signals themselves (`curation.signal_aligner`). Heavier
profiles import their libraries lazily, so the base install runs ``cpu``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curation.config import CurationConfig
from curation.roles import Aligner, Captioner, Condenser, Transcriber


@dataclass
class Profile:
    name: str
    aligner: Aligner
    captioner: Captioner | None = None
    condenser: Condenser | None = None
    transcriber: Transcriber | None = None

    def models(self) -> dict[str, str | None]:
        """Role → model name, as recorded in every sample's ``pipeline.models``."""
        embedder = getattr(self.aligner, "embedder_name", None)
        return {
            "captioner": self.captioner.name if self.captioner else None,
            "condenser": self.condenser.name if self.condenser else None,
            "transcriber": self.transcriber.name if self.transcriber else None,
            "embedder": embedder,
            "aligner": self.aligner.name,
        }


def build_profile(config: CurationConfig, overrides: dict[str, Any] | None = None) -> Profile:
    """The profile named by ``config.profile``."""
    if config.profile == "cpu":
        from curation.signal_aligner import SignalAligner

        return Profile("cpu", aligner=SignalAligner(max_offset=config.max_offset))
    raise ValueError(f"config: unknown profile {config.profile!r} (known: cpu)")
