"""The fields of an ACAV-1M sample's metadata (the ``json`` member): `Field`, `METADATA` and the constants they use.

A value that a stage could not compute is ``null``; the struct it sits in then carries a non-null ``reason`` (see
`Field.reason_for`). Nothing is made up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = "1.0"
AUDIO_SAMPLE_RATE = 16_000
SPLITS = ("train", "validation", "test")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,120}$")
"""Keys never contain a dot: WebDataset readers split key and member at the first dot."""
SCALAR_KINDS = ("string", "int64", "float32", "bool")


@dataclass(frozen=True)
class Field:
    """One metadata field.

    ``kind`` is a scalar kind, ``"list"`` (of ``item`` scalars) or ``"struct"``
    (of ``children``). ``required`` fields are never null. A struct with
    ``reason_for`` set has a ``reason`` child that must be non-null exactly
    when the field it names is null.
    """

    name: str
    kind: str
    description: str
    children: tuple[Field, ...] = ()
    item: str | None = None
    required: bool = False
    reason_for: str | None = None
    unit_interval: bool = False
    """Scalar (or every list item) lies in [0, 1]."""
    choices: tuple[str, ...] = ()


def _s(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "string", description, **kw)


def _f(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "float32", description, **kw)


def _i(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "int64", description, **kw)


def _b(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "bool", description, **kw)


def _l(name: str, item: str, description: str, **kw: Any) -> Field:
    return Field(name, "list", description, item=item, **kw)


def _struct(name: str, description: str, *children: Field, **kw: Any) -> Field:
    return Field(name, "struct", description, children=tuple(children), **kw)


_REASON = _s("reason", "Why the value is null (a stage could not compute it); null when the value is present.")


def _filter(name: str, what: str, *extra: Field) -> Field:
    return _struct(
        name,
        f"{what} (Algorithm 1). `score` is compared with `threshold`.",
        _f("score", "Normalised score in [0, 1] compared with the threshold.", unit_interval=True),
        _f("raw", "The raw similarity the score was normalised from (cosine in [-1, 1] for model profiles)."),
        *extra,
        _f("threshold", "Threshold used for the pass/flag decision.", required=True),
        _b("passed", "score >= threshold; null when the score is null."),
        _REASON,
        reason_for="score",
    )


METADATA = _struct(
    "json",
    "Per-clip metadata, the `json` member of every sample.",
    _s("key", "Sample key: the tar member prefix, unique in the release, without dots.", required=True),
    _s("split", "Split the clip belongs to, from a hash of its source video id.", required=True, choices=SPLITS),
    _struct(
        "source",
        "Where the clip was cut from.",
        _s("video_id", "Identifier of the source video (all its clips share one split).", required=True),
        _s("path", "Path or URL of the source file as given to curation.", required=True),
        _f("start", "Start of the clip in the source, seconds.", required=True),
        _f("end", "End of the clip in the source, seconds.", required=True),
        _s("license", "License of the source video, when known: the manifest's, else as the site states it."),
        _s("text", "Free text that came with the input (manifest `text`), when given."),
        _s("title", "Title of the source video as the site gives it (inputs fetched with yt-dlp), when given."),
        _s("uploader", "Uploader of the source video as the site gives it, when given."),
        _s("upload_date", "Upload date of the source video as the site gives it (YYYY-MM-DD), when given."),
    ),
    _struct(
        "clip",
        "The media written in this sample.",
        _f("duration", "Clip duration, seconds.", required=True),
        _f("fps", "Frame rate of the `mp4` member.", required=True),
        _i("width", "Frame width of the `mp4` member, pixels.", required=True),
        _i("height", "Frame height of the `mp4` member, pixels.", required=True),
        _i("sample_rate", "Sample rate of the `flac` member (16 kHz mono).", required=True),
    ),
    _struct(
        "caption",
        "The clip's comprehensive caption (Algorithm 1, lines 6-8).",
        _s("text", "The caption; also the `txt` member."),
        _s("origin", "Where the caption came from: manifest, or the model(s) that wrote it."),
        _l("descriptions", "string", "Sentence-level descriptions the caption was condensed from."),
        _s("transcript", "Speech transcript, when a transcriber ran."),
        _REASON,
        reason_for="text",
    ),
    _struct(
        "alignment",
        "The three alignment filters of Algorithm 1 and the synchronisation estimate.",
        _filter("language", "Language alignment: caption against the audio-visual content"),
        _filter("instance", "Instance alignment: audio against visual"),
        _filter(
            "temporal",
            "Temporal alignment: mean over 1-s windows",
            _l("windows", "float32", "Per-1-s-window alignment scores in [0, 1].", unit_interval=True),
        ),
        _struct(
            "sync",
            "Audio-visual synchronisation: the audio offset that best aligns audio with video.",
            _f("offset", "Estimated audio delay relative to the video, seconds (positive: audio late)."),
            _f("confidence", "Confidence of the offset estimate in [0, 1].", unit_interval=True),
            _b("realigned", "The audio was shifted by `offset` before the final decision.", required=True),
            _REASON,
            reason_for="offset",
        ),
        _l("flags", "string", "Filters the clip failed (flagged for review or reprocessing)."),
        _b("passed", "No filter failed.", required=True),
    ),
    _struct(
        "labels",
        "Task labels.",
        _struct(
            "category",
            "Classification: the clip's audio-visual class.",
            _s("label", "Class name."),
            _i("id", "Class index in the release's label vocabulary."),
            _f("score", "Classifier score in [0, 1].", unit_interval=True),
            _REASON,
            reason_for="label",
        ),
        _struct(
            "localization",
            "Sound-source localization, normalised image coordinates (x right, y down, in [0, 1]).",
            _l("peak", "float32", "[x, y] of the localization map's maximum.", unit_interval=True),
            _l("box", "float32", "[x0, y0, x1, y1] around the sounding region.", unit_interval=True),
            _REASON,
            reason_for="peak",
        ),
        _struct(
            "mask",
            "Segmentation: the `mask.png` member (same size as the video frames, 255 = sounding region).",
            _b("present", "The sample carries a `mask.png` member.", required=True),
            _REASON,
        ),
    ),
    _struct(
        "embeddings",
        "The `npy` member: one embedding per row, for retrieval.",
        _b("present", "The sample carries an `npy` member.", required=True),
        _l("rows", "string", "What each row of the `npy` array embeds (e.g. audio, visual, text)."),
        _s("model", "Model that produced the embeddings."),
        _REASON,
    ),
    _struct(
        "pipeline",
        "Provenance of this sample.",
        _s("version", "acav1m version that wrote the sample.", required=True),
        _s("profile", "Curation profile (models and settings).", required=True),
        _s("schema", "Schema version.", required=True),
        _struct(
            "models",
            "Model used for each role; null when the role did not run.",
            _s("captioner", "Video LLM that wrote the descriptions."),
            _s("condenser", "LLM that condensed descriptions into one caption."),
            _s("transcriber", "Speech recogniser."),
            _s(
                "embedder",
                "Embedder behind the alignment scores: ImageBind (audio-visual-text: alignment, labels) or, in the cpu profile, MiniLM (text only: the language score).",
            ),
            _s("aligner", "Method that computed the alignment scores."),
        ),
    ),
    required=True,
)
