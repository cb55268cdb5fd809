"""Assemble one `Sample`: the schema's metadata (every schema dict is built here) and the encoded members of a clip."""

from __future__ import annotations

from typing import Any

import numpy as np

from acav1m_hf import strict_json
from acav1m_hf.schema import AUDIO_SAMPLE_RATE, SCHEMA_VERSION, validate_sample
from curation import __version__
from curation.analyse import Decision
from curation.captioning import CaptionResult
from curation.config import CurationConfig
from curation.encode import encode_flac, encode_jpg, encode_mp4, encode_npy, encode_png_mask
from curation.filters import flags, passes, window_mean
from curation.localization import explicit_labels, heatmap_to_labels
from curation.plan import split_of
from curation.profiles import Profile
from curation.records import Sample, SourceInfo
from curation.roles import Score, round_score


def sample_key(video_id: str, start: float) -> str:
    """``{video_id}-{start in ms}``: unique per clip, stable, and free of dots."""
    return f"{video_id}-{int(round(start * 1000)):08d}"


def build_sample(decision: Decision, caption: CaptionResult, profile: Profile, config: CurationConfig) -> Sample:
    """The sample of a filtered clip: schema metadata and encoded members, validated before it is returned.

    A sample that fails validation is a bug in a stage, never the input's fault, so it raises instead of being
    written; the engine then retries the unit and reports it as failed.
    """
    clip, analysis = decision.clip, decision.analysis
    metadata, mask = sample_metadata(decision, caption, profile, config)
    members = {
        "mp4": encode_mp4(clip.frames, clip.fps, clip.audio),
        "flac": encode_flac(clip.audio),
        "jpg": encode_jpg(clip.frames[len(clip.frames) // 2]),
        "json": strict_json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode("utf-8"),
    }
    if caption.text is not None:
        members["txt"] = caption.text.encode("utf-8")
    if mask is not None:
        members["mask.png"] = encode_png_mask(mask)
    if analysis.embeddings is not None:
        members["npy"] = encode_npy(analysis.embeddings)
    errors = validate_sample(metadata["key"], members)
    if errors:  # a bug in a stage, never the input's fault: fail loudly rather than write it
        raise AssertionError(f"curation produced an invalid sample {metadata['key']}: {'; '.join(errors)}")
    return Sample(metadata["key"], metadata, members)


def sample_metadata(
    decision: Decision, caption: CaptionResult, profile: Profile, config: CurationConfig
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The schema metadata of a filtered clip and its segmentation mask (or None): everything computed, not encoded."""
    clip, analysis = decision.clip, decision.analysis
    item = clip.item
    height, width = clip.frames.shape[1:3]
    labels, mask = _labels(decision, width, height)
    key = sample_key(item.video_id, clip.start)
    site = clip.site or SourceInfo()
    metadata: dict[str, Any] = {
        "key": key,
        "split": split_of(item.video_id, config.split_fractions),
        "source": {
            "video_id": item.video_id,
            "path": item.recorded,
            "start": clip.start,
            "end": clip.end,
            "license": item.license or site.license,
            "text": item.text,
            "title": site.title,
            "uploader": site.uploader,
            "upload_date": site.upload_date,
        },
        "clip": {
            "duration": round(clip.duration, 6),
            "fps": round(clip.fps, 6),
            "width": int(width),
            "height": int(height),
            "sample_rate": AUDIO_SAMPLE_RATE,
        },
        "caption": {
            "text": caption.text,
            "origin": caption.origin,
            "descriptions": caption.descriptions,
            "transcript": caption.transcript,
            "reason": caption.reason if caption.text is None else None,
        },
        "alignment": alignment_metadata(decision, config),
        "labels": labels,
        "embeddings": {
            "present": analysis.embeddings is not None,
            "rows": analysis.embedding_rows if analysis.embeddings is not None else [],
            "model": profile.models()["embedder"] if analysis.embeddings is not None else None,
            "reason": None if analysis.embeddings is not None else "no embedder in this profile",
        },
        "pipeline": {
            "version": __version__,
            "profile": profile.name,
            "schema": SCHEMA_VERSION,
            "models": profile.models(),
        },
    }
    return metadata, mask


def alignment_metadata(decision: Decision, config: CurationConfig) -> dict[str, Any]:
    """The ``alignment`` struct of the schema, with the filters' verdicts (`curation.filters`)."""
    analysis = decision.analysis
    windows = None if analysis.temporal_windows is None else [round_score(w) for w in analysis.temporal_windows]
    temporal = Score(window_mean(windows), window_mean(windows), analysis.temporal_reason if windows is None else None)
    filters = {
        "language": _filter(analysis.language, config.language_threshold),
        "instance": _filter(analysis.instance, config.instance_threshold),
        "temporal": {**_filter(temporal, config.temporal_threshold), "windows": windows},
    }
    # the raw value: the mean of the windows as the aligner measured them, when the windows are calibrated
    filters["temporal"]["raw"] = round_score(window_mean(analysis.temporal_raw))
    flagged = flags({name: f["passed"] for name, f in filters.items()}, filters["instance"]["score"] is not None)
    return {
        **filters,
        "sync": {
            "offset": round_score(decision.offset),
            "confidence": round_score(decision.confidence),
            "realigned": decision.realigned,
            "reason": None if round_score(decision.offset) is not None else (decision.offset_reason or "not estimated"),
        },
        "flags": flagged,
        "passed": not flagged,
    }


def _filter(score: Score, threshold: float) -> dict[str, Any]:
    value = round_score(score.score)
    return {
        "score": value,
        "raw": round_score(score.raw),
        "threshold": threshold,
        "passed": passes(value, threshold),
        "reason": None if value is not None else (score.reason or "not computed"),
    }


def _labels(decision: Decision, width: int, height: int) -> tuple[dict[str, Any], np.ndarray | None]:
    analysis = decision.analysis
    if analysis.category is not None:
        label, index, score = analysis.category
        category = {"label": label, "id": int(index), "score": round_score(score), "reason": None}
    else:
        category = {"label": None, "id": None, "score": None, "reason": analysis.category_reason or "not computed"}
    reason = analysis.heatmap_reason or "not computed"
    if analysis.box is not None or analysis.mask is not None:
        peak, box, mask = explicit_labels(analysis.box, analysis.mask, width, height)
        localization = {"peak": [round_score(v) for v in peak], "box": [round_score(v) for v in box], "reason": None}
        empty = "no pixel of the segmentation mask is at or above 0.5"
        unsegmented = analysis.mask_reason or "no segmentation ran"
        mask_reason = None if mask is not None else empty if analysis.mask is not None else unsegmented
        mask_label = {"present": mask is not None, "reason": mask_reason}
        return {"category": category, "localization": localization, "mask": mask_label}, mask
    if analysis.heatmap is not None:
        try:
            peak, box, mask = heatmap_to_labels(analysis.heatmap, width, height)
            localization = {
                "peak": [round_score(v) for v in peak],
                "box": [round_score(v) for v in box],
                "reason": None,
            }
            return {"category": category, "localization": localization, "mask": {"present": True, "reason": None}}, mask
        except ValueError as exc:  # e.g. a map with no positive value: no sounding region to label
            reason = str(exc)
    localization = {"peak": None, "box": None, "reason": reason}
    return {"category": category, "localization": localization, "mask": {"present": False, "reason": reason}}, None
