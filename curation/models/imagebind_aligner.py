"""The aligner: Algorithm 1's scores, the sync offset and the task labels from ImageBind embeddings.

`ImageBindAligner` (its docstring gives the method) stacks a batch's clips,
windows and offsets through `curation.models.imagebind.ImageBindEmbedder`.

**Scores** (see docs/models.md): the raw value is a cosine in [-1, 1]; the
normalised score is ``(cos + 1) / 2`` in [0, 1]. That only maps the range:
0.5 is cos = 0, not chance (unrelated pairs sit near 0). A calibration
fitted with real weights (`curation.calibration`) maps the raw cosine to
P(matched) before any filter reads it; none ships for this aligner.
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.localization import parabolic_offset
from curation.models.imagebind import ImageBindEmbedder
from curation.models.imagebind_preprocess import AUDIO_SECONDS, IMAGE_SIZE, crop_offsets, frames_to_vision
from curation.records import Clip
from curation.roles import Analysis, Score

LABELS_FILE = Path(__file__).with_name("audioset_labels.csv")
LABEL_TEMPLATE = "a video of {}, with its sound."


def load_labels(path: str | Path = LABELS_FILE) -> list[str]:
    """Class names of the label vocabulary, in index order (``index,mid,display_name`` CSV or one name per line)."""
    text = Path(path).read_text(encoding="utf-8")
    rows = list(csv.reader(text.splitlines()))
    if rows and [c.strip() for c in rows[0][:3]] == ["index", "mid", "display_name"]:
        return [row[2] for row in sorted(rows[1:], key=lambda r: int(r[0])) if row]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class AlignerSettings:
    max_offset: float = 1.0
    """Sync search range, seconds (both directions): Algorithm 1's re-alignment."""
    offset_step: float = 0.2
    window: float = 1.0
    """Temporal alignment window, seconds."""
    min_sync_seconds: float = 2.0
    """Shortest clip whose offset is searched."""
    crops: int = 3
    label_template: str = LABEL_TEMPLATE


@dataclass(frozen=True)
class _Plan:
    """Where one clip's rows come from: its windows and the offsets its audio is searched over."""

    duration: float
    starts: list[float]
    whole: bool
    """Shorter than one window: the clip is its own single window."""
    length: float
    """Seconds each window spans (the clip's duration when ``whole``)."""
    centres: np.ndarray
    search: bool
    offsets: np.ndarray


def normalised(cos: float) -> float:
    """The paper's "normalised cosine": ``(cos + 1) / 2``, mapping [-1, 1] onto [0, 1]; uncalibrated (docs/models.md)."""
    return float(min(1.0, max(0.0, (cos + 1.0) / 2.0)))


class ImageBindAligner:
    """Algorithm 1's three filters, the sync offset and the task labels from ImageBind embeddings.

    On each clip (`analyse_batch` stacks a batch's clips, windows and offsets into one pass per encoder):

    * windows: the clip's 1-s windows ``[i, i+1)``; each is seen as two frames
      (at 1/4 and 3/4 of the window, three spatial crops) and heard as the 2-s
      audio centred on it (ImageBind's audio input length), cut to the clip
      (the fbank padded as upstream pads a short clip's);
    * temporal: per window, normalised cosine of its audio and visual
      embeddings; the filter uses their mean;
    * instance: normalised cosine of the clip's audio and visual embeddings
      (means of the window embeddings, as upstream averages clips);
    * language: normalised cosine of the caption's text embedding and the
      audio-visual embedding (the normalised sum of the audio and visual
      ones);
    * sync: the window audio is re-embedded at offsets ``-max_offset ..
      +max_offset`` (``offset_step`` apart); the offset with the best mean
      window similarity, refined by a parabola through its neighbours, is the
      audio delay (positive: audio late). Confidence is the best score's
      margin over the median score of the search, on the normalised scale;
    * heatmap: per crop and window, cosine of each visual patch embedding
      with the window's audio embedding, normalised, averaged over windows
      and stitched back onto the full frame;
    * category: zero-shot over the label vocabulary (text embeddings of
      ``label_template``), softmax with the model's text logit scale over the
      cosines with the audio-visual embedding;
    * embeddings: rows ``audio``, ``visual`` and, with a caption, ``text``.
    """

    name = "imagebind-alignment"

    def __init__(
        self,
        embedder: ImageBindEmbedder,
        labels: Sequence[str] | None = None,
        settings: AlignerSettings | None = None,
    ) -> None:
        self.embedder = embedder
        self.settings = settings or AlignerSettings()
        self.labels = list(labels) if labels is not None else load_labels()
        self.embedder_name = embedder.name
        self._label_vectors: Any = None
        self._lock = threading.Lock()

    def label_vectors(self) -> Any:
        """Text embeddings of the label vocabulary, computed once."""
        with self._lock:
            if self._label_vectors is None and self.labels:
                prompts = [self.settings.label_template.format(label) for label in self.labels]
                self._label_vectors = self.embedder.text(prompts)
            return self._label_vectors

    # ----------------------------------------------------------------- pieces

    def _windows(self, clip: Clip) -> list[float]:
        duration = len(clip.audio) / AUDIO_SAMPLE_RATE
        count = int(math.floor(duration / self.settings.window + 1e-6))
        return [i * self.settings.window for i in range(count)]

    def _frame_pairs(self, clip: Clip, starts: list[float], length: float) -> np.ndarray:
        """Two frames per window, at 1/4 and 3/4 of it: ImageBind's (2, 14, 14) kernel sees frame pairs."""
        last = len(clip.frames) - 1
        pairs = []
        for start in starts:
            times = (start + 0.25 * length, start + 0.75 * length)
            pairs.append([min(last, max(0, int(round(t * clip.fps - 0.5)))) for t in times])
        return clip.frames[np.asarray(pairs)]

    def _audio_segments(self, clip: Clip, centres: np.ndarray) -> tuple[Any, Any]:
        """The 2-s audio centred at ``centres`` (seconds, any shape), cut to the clip: ``(N, 32000)`` and lengths ``(N,)``.

        Each row holds the part of its 2 s that lies inside the clip, first,
        and its length: `audio_to_mel` pads its fbank as upstream pads a
        short clip's, so no sample that is not in the clip is ever heard.
        """
        torch = self.embedder.torch
        length = int(AUDIO_SECONDS * AUDIO_SAMPLE_RATE)
        audio = torch.as_tensor(np.asarray(clip.audio, np.float32))
        starts = np.round((np.ravel(centres) - AUDIO_SECONDS / 2) * AUDIO_SAMPLE_RATE).astype(np.int64)
        first = np.clip(starts, 0, len(audio))
        lengths = np.clip(starts + length, 0, len(audio)) - first
        index = torch.as_tensor(first).unsqueeze(1) + torch.arange(length).unsqueeze(0)
        inside = torch.arange(length).unsqueeze(0) < torch.as_tensor(lengths).unsqueeze(1)
        padded = torch.nn.functional.pad(audio, (0, length))
        return padded[index.clamp_max(len(padded) - 1)] * inside, torch.as_tensor(lengths)

    def _offsets(self) -> np.ndarray:
        s = self.settings
        steps = int(round(s.max_offset / s.offset_step)) if s.offset_step > 0 else 0
        return np.arange(-steps, steps + 1) * s.offset_step

    # ----------------------------------------------------------------- analysis

    def _plan(self, clip: Clip) -> _Plan:
        s = self.settings
        duration = len(clip.audio) / AUDIO_SAMPLE_RATE
        starts = self._windows(clip)
        whole = not starts  # shorter than one window: the clip is its own single window
        length = duration if whole else s.window
        starts = starts or [0.0]
        search = duration >= s.min_sync_seconds and s.max_offset > 0
        offsets = self._offsets() if search else np.zeros(1)
        return _Plan(duration, starts, whole, length, np.asarray(starts) + length / 2, search, offsets)

    def analyse(self, clip: Clip, caption: str | None) -> Analysis:
        """One clip: `analyse_batch` of a batch of one (so both paths run the same code)."""
        return self.analyse_batch([clip], [caption])[0]

    def analyse_batch(self, clips: Sequence[Clip], captions: Sequence[str | None]) -> list[Analysis]:
        """Several clips with one pass through each encoder: their windows, crops, offsets and captions stacked.

        Every clip's vision rows (windows x crops), audio rows (offsets x
        windows, i.e. the whole re-alignment search) and caption go through
        the embedder together (in chunks of its ``max_batch``), then are split
        back per clip. Each row is embedded on its own, so the result is the
        one-clip result up to the kernels' summation order, which may depend
        on the batch shape (see docs/models.md for the tolerance).
        """
        if len(clips) != len(captions):
            raise ValueError(f"analyse_batch: {len(clips)} clips but {len(captions)} captions")
        if not clips:
            return []
        torch = self.embedder.torch
        plans = [self._plan(clip) for clip in clips]
        pixels = [
            frames_to_vision(
                self._frame_pairs(c, p.starts, p.length), device=self.embedder.device, crops=self.settings.crops
            )
            for c, p in zip(clips, plans, strict=True)
        ]
        visual_crops, patches = self.embedder.vision(torch.cat(pixels))  # (sum W*K, D), (sum W*K, g, g, D)
        cuts = [len(p) for p in pixels]
        audio_in = [
            self._audio_segments(c, p.centres[None, :] + p.offsets[:, None]) for c, p in zip(clips, plans, strict=True)
        ]
        audio = self.embedder.audio(torch.cat([a[0] for a in audio_in]), torch.cat([a[1] for a in audio_in]))
        texts = [c for c in captions if c and c.strip()]
        text_vectors = iter(self.embedder.text(texts) if texts else [])
        out = []
        for plan, clip, caption, visual_rows, patch_rows, audio_rows in zip(
            plans,
            clips,
            captions,
            visual_crops.split(cuts),
            patches.split(cuts),
            audio.split([len(a[1]) for a in audio_in]),
            strict=True,
        ):
            text = next(text_vectors) if caption and caption.strip() else None
            out.append(self._finish(clip, plan, visual_rows, patch_rows, audio_rows, text))
        return out

    def _finish(self, clip: Clip, plan: _Plan, visual_crops: Any, patches: Any, audio: Any, text: Any) -> Analysis:
        """One clip's scores from its own rows of the batch's embeddings."""
        torch = self.embedder.torch
        s = self.settings
        windows, offsets = len(plan.starts), plan.offsets
        zero = int(np.argmin(np.abs(offsets)))
        crops = visual_crops.shape[0] // windows
        visual = self.embedder._normalise(visual_crops.reshape(windows, crops, -1).mean(dim=1))  # (W, D)
        audio = audio.reshape(len(offsets), windows, -1)  # (O, W, D)

        per_window = (audio * visual.unsqueeze(0)).sum(-1).cpu().numpy()  # (O, W) cosines
        # A window counts at an offset only if the audio it is matched with (its central window-length part)
        # lies inside the clip: fbank padding would otherwise bias the search away from large offsets.
        shifted = plan.centres[None, :] + offsets[:, None]
        half = plan.length / 2
        valid = (shifted - half >= -1e-6) & (shifted + half <= plan.duration + 1e-6)
        valid[zero] = True
        curve = np.where(
            valid.any(axis=1), (per_window * valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1), -np.inf
        )
        audio0, windows0 = audio[zero], per_window[zero]
        clip_audio = self.embedder._normalise(audio0.mean(0))
        clip_visual = self.embedder._normalise(visual.mean(0))
        instance_cos = float((clip_audio * clip_visual).sum())
        av = self.embedder._normalise(clip_audio + clip_visual)

        rows, names = [clip_audio, clip_visual], ["audio", "visual"]
        if text is not None:
            language_cos = float((text * av).sum())
            language = Score(normalised(language_cos), language_cos)
            rows.append(text)
            names.append("text")
        else:
            language = Score.missing("no caption to compare")

        if plan.whole:
            temporal, temporal_reason = None, f"clip shorter than one {s.window:g}-s window"
        else:
            temporal, temporal_reason = [normalised(c) for c in windows0], None

        if plan.search:
            offset, confidence = _best_offset(offsets, curve, s.max_offset)
            sync_reason = None
        else:
            offset, confidence = None, None
            sync_reason = f"clip shorter than {s.min_sync_seconds:g} s: no offset search"

        heatmap = self._heatmap(patches, audio0, clip.frames.shape[1:3], windows, crops)
        category, category_reason = self._category(av)
        return Analysis(
            language=language,
            instance=Score(normalised(instance_cos), instance_cos),
            temporal_windows=temporal,
            temporal_reason=temporal_reason,
            sync_offset=offset,
            sync_confidence=confidence,
            sync_reason=sync_reason,
            heatmap=heatmap,
            heatmap_reason=None,
            category=category,
            category_reason=category_reason,
            embeddings=torch.stack(rows).cpu().numpy().astype(np.float32),
            embedding_rows=names,
        )

    def _heatmap(self, patches: Any, audio: Any, frame_hw: tuple[int, int], windows: int, crops: int) -> np.ndarray:
        """Patch-audio similarity per crop, averaged over windows, stitched onto the short-side-224 frame."""
        grid = patches.shape[1]
        sims = (patches.reshape(windows, crops, grid, grid, -1) * audio[:, None, None, None, :]).sum(-1)
        sims = ((sims.mean(0) + 1) / 2).clamp(0, 1).cpu().numpy()  # (K, g, g)
        (h, w), offsets = crop_offsets(*frame_hw, crops=self.settings.crops)
        cell = IMAGE_SIZE // grid
        canvas = np.zeros((h // cell + 1, w // cell + 1), np.float32)
        count = np.zeros_like(canvas)
        for k, offset in enumerate(offsets):
            o = int(round(offset / cell))
            if h > w:
                canvas[o : o + grid, :grid] += sims[k]
                count[o : o + grid, :grid] += 1
            else:
                canvas[:grid, o : o + grid] += sims[k]
                count[:grid, o : o + grid] += 1
        rows, cols = np.nonzero(count)
        canvas = canvas[: rows.max() + 1, : cols.max() + 1] / np.maximum(count[: rows.max() + 1, : cols.max() + 1], 1)
        return canvas.astype(np.float32)

    def _category(self, av: Any) -> tuple[tuple[str, int, float] | None, str | None]:
        vectors = self.label_vectors()
        if vectors is None:
            return None, "no label vocabulary"
        logits = self.embedder.text_logit_scale * (vectors @ av)
        probs = self.embedder.torch.softmax(logits.float(), dim=0)
        index = int(probs.argmax())
        return (self.labels[index], index, float(probs[index])), None


def _best_offset(offsets: np.ndarray, curve: np.ndarray, limit: float) -> tuple[float, float]:
    """Argmax of the offset curve with parabolic refinement; confidence = (best - median) / 2 (normalised scale)."""
    best = int(np.argmax(curve))
    delta = parabolic_offset(curve, best)  # in steps of the offset grid
    offset = float(offsets[best]) + (delta * float(offsets[1] - offsets[0]) if delta else 0.0)
    offset = float(np.clip(offset, -limit, limit))
    finite = curve[np.isfinite(curve)]
    confidence = float(np.clip((curve[best] - np.median(finite)) / 2.0, 0.0, 1.0))
    return round(offset, 4), confidence
