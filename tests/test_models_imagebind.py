"""ImageBind: upstream code loaded without its broken ``__init__``, real preprocessing, a tiny random model, the aligner.

Nothing is downloaded: the model is the upstream architecture at a tiny size
with random weights, so the scores are meaningless; the tests check shapes,
ranges, dtypes, agreement with upstream's own forward pass and fbank, and
the offset search's mechanics with an oracle embedder whose embeddings
encode time.
"""

from __future__ import annotations

import sys
import types
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import needs

needs("torch", "imagebind")  # imagebind-unofficial
import torch  # noqa: E402

from acav1m_hf.schema import AUDIO_SAMPLE_RATE  # noqa: E402
from curation.analyse import shift_audio  # noqa: E402
from curation.models.imagebind import ImageBindEmbedder, bpe_path, imagebind_modules  # noqa: E402
from curation.models.imagebind_aligner import (  # noqa: E402
    AlignerSettings,
    ImageBindAligner,
    _best_offset,
    load_labels,
    normalised,
)
from curation.models.imagebind_preprocess import audio_to_mel, crop_offsets, frames_to_vision, kaldi_fbank  # noqa: E402
from tests.synthetic import make_clip  # noqa: E402


@pytest.fixture(scope="module")
def embedder() -> ImageBindEmbedder:
    torch.manual_seed(0)
    return ImageBindEmbedder.build("tiny", "random")


@pytest.fixture(scope="module")
def aligner(embedder: ImageBindEmbedder) -> ImageBindAligner:
    return ImageBindAligner(embedder, labels=load_labels()[:40])


def test_upstream_modules_load_without_the_package_init() -> None:
    model_module, preprocessors = imagebind_modules()
    assert hasattr(model_module, "ImageBindModel") and hasattr(preprocessors, "SimpleTokenizer")
    assert "imagebind.data" not in sys.modules  # the __init__ (pytorchvideo, torchaudio) never ran
    assert isinstance(sys.modules["imagebind"], types.ModuleType)
    assert bpe_path().name == "bpe_simple_vocab_16e6.txt.gz"


def test_kaldi_fbank_matches_torchaudio_reference() -> None:
    """Reference values from ``torchaudio.compliance.kaldi.fbank`` (torchaudio 2.11) with ImageBind's arguments."""
    t = np.arange(32000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).normal(size=32000)
    x = torch.tensor(wave.astype(np.float32))
    fbank = kaldi_fbank((x - x.mean())[None])[0]
    assert fbank.shape == (198, 128)
    golden = {(0, 0): -8.3008, (50, 40): -4.0393, (197, 127): 1.8886, (100, 5): -10.5227, (120, 90): 0.342}
    for (i, j), value in golden.items():
        assert float(fbank[i, j]) == pytest.approx(value, abs=2e-3)
    assert float(fbank.mean()) == pytest.approx(-1.88345, abs=1e-3)
    mel = audio_to_mel(torch.stack([x, x * 0.5]))
    assert mel.shape == (2, 1, 128, 204) and mel.dtype == torch.float32
    assert mel[:, :, :, 198:].numpy() == pytest.approx(np.full((2, 1, 128, 6), 4.268 / 9.138))  # padding, normalised


def test_vision_preprocessing_crops_cover_the_frame() -> None:
    (h, w), offsets = crop_offsets(96, 128)  # upstream truncates 298.67 and centres at ceil(74 / 2)
    assert (h, w) == (224, 298) and offsets == [0, 37, 74]
    assert crop_offsets(240, 344) == ((224, 321), [0, 49, 97])  # ceil(48.5) = 49, where round() gives 48
    assert crop_offsets(344, 240, crops=1) == ((321, 224), [49])
    (h, w), offsets = crop_offsets(300, 200)
    assert (h, w) == (336, 224) and offsets == [0, 56, 112]
    frames = np.full((2, 2, 96, 128, 3), 255, np.uint8)
    pixels = frames_to_vision(frames)
    assert pixels.shape == (6, 3, 2, 224, 224)
    white = (1 - np.array([0.48145466, 0.4578275, 0.40821073])) / np.array([0.26862954, 0.26130258, 0.27577711])
    assert pixels[0, :, 0, 100, 100].numpy() == pytest.approx(white, abs=1e-4)


def test_embedder_agrees_with_upstream_forward(embedder: ImageBindEmbedder) -> None:
    rng = np.random.default_rng(1)
    waves = torch.tensor(rng.normal(0, 0.1, (2, 32000)).astype(np.float32))
    frames = rng.integers(0, 255, (1, 2, 120, 160, 3), dtype=np.uint8)
    pixels = frames_to_vision(frames, crops=1)
    texts = ["a dog barks", "a car engine revs"]
    ours_audio = embedder.audio(waves)
    ours_vision, patches = embedder.vision(pixels)
    ours_text = embedder.text(texts)
    with torch.inference_mode():
        upstream = embedder.model(
            {
                "audio": audio_to_mel(waves),
                "vision": pixels.unsqueeze(1),
                "text": embedder.tokenizer(texts),
            }
        )
    for ours, key in ((ours_audio, "audio"), (ours_vision, "vision"), (ours_text, "text")):
        theirs = torch.nn.functional.normalize(upstream[key], dim=-1)
        assert torch.allclose(ours, theirs, atol=1e-5), key
    assert patches.shape == (1, 16, 16, 32)
    assert torch.allclose(patches.norm(dim=-1), torch.ones(1, 16, 16), atol=1e-5)
    assert embedder.flops > 0


def test_analysis_fills_every_field(aligner: ImageBindAligner) -> None:
    clip = make_clip(seconds=4.0, seed=1)
    analysis = aligner.analyse(clip, "A white blob flashes while something clicks.")
    for score in (analysis.language, analysis.instance):
        assert 0.0 <= score.score <= 1.0 and score.score == pytest.approx(normalised(score.raw))
    assert len(analysis.temporal_windows) == 4 and all(0 <= w <= 1 for w in analysis.temporal_windows)
    assert -1.0 <= analysis.sync_offset <= 1.0 and 0.0 <= analysis.sync_confidence <= 1.0
    assert analysis.heatmap.dtype == np.float32 and analysis.heatmap.shape == (16, 21)
    assert 0.0 <= analysis.heatmap.min() <= analysis.heatmap.max() <= 1.0
    label, index, score = analysis.category
    assert aligner.labels[index] == label and 0.0 < score <= 1.0
    assert analysis.embeddings.shape == (3, 32) and analysis.embeddings.dtype == np.float32
    assert analysis.embedding_rows == ["audio", "visual", "text"]
    assert np.linalg.norm(analysis.embeddings, axis=1) == pytest.approx(np.ones(3), abs=1e-5)


def test_missing_pieces_have_reasons(aligner: ImageBindAligner) -> None:
    short = make_clip(seconds=0.6, seed=2)
    analysis = aligner.analyse(short, None)
    assert analysis.language.score is None and analysis.language.reason
    assert analysis.temporal_windows is None and "shorter than one" in analysis.temporal_reason
    assert analysis.sync_offset is None and "no offset search" in analysis.sync_reason
    assert analysis.instance.score is not None and analysis.heatmap is not None
    assert analysis.embedding_rows == ["audio", "visual"]


def test_bf16(embedder: ImageBindEmbedder) -> None:
    bf16 = ImageBindEmbedder(embedder.model, dtype="bfloat16", name="tiny-bf16")
    try:
        analysis = ImageBindAligner(bf16, labels=["dog", "car"]).analyse(make_clip(seconds=2.0, seed=3), "a dog")
        assert analysis.embeddings.dtype == np.float32 and 0.0 <= analysis.instance.score <= 1.0
    finally:
        embedder.model.float()


# --------------------------------------------------------------------------- the offset search, with an oracle


class TimeOracle:
    """Embeds audio and frames as the time they show, on a circle: audio/visual agree exactly when in sync.

    The clip's frames carry their own index as pixel value and its audio is a
    ramp of its own time, so the oracle can read the time back.
    """

    name = "oracle"
    device = torch.device("cpu")
    text_logit_scale = 10.0
    torch = torch
    flops = 0.0

    def __init__(self, fps: float) -> None:
        self.fps = fps

    @staticmethod
    def _circle(t: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.cos(t * 0.9), torch.sin(t * 0.9), torch.zeros_like(t)], dim=-1)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x.float(), dim=-1)

    def audio(self, segments: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The time at the middle of the audio each row holds (the ramp stores time / 100)."""
        middle = (lengths // 2).clamp(min=400, max=segments.shape[1] - 400)
        rows = [segments[i, m - 400 : m + 400].mean() for i, m in enumerate(middle.tolist())]
        return self._circle(torch.stack(rows) * 100)

    def vision(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value = pixels[:, 0, :, 0, 0] * 0.26862954 + 0.48145466  # undo the CLIP normalisation
        index = (value * 255).mean(dim=1)
        embedding = self._circle(index / self.fps)
        return embedding, embedding[:, None, None, :].expand(-1, 16, 16, -1)

    def text(self, texts: list[str]) -> torch.Tensor:
        return self._normalise(torch.ones(len(texts), 3))


def _timed_clip(delay: float, seconds: float = 6.0, fps: float = 25.0) -> object:
    clip = make_clip(seconds=seconds, fps=fps, seed=4)
    n = len(clip.frames)
    frames = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], clip.frames.shape).copy()
    t = np.arange(len(clip.audio)) / AUDIO_SAMPLE_RATE
    audio = ((t - delay) / 100).astype(np.float32)  # what sounds at t belongs to the picture at t - delay
    return replace(clip, frames=frames, audio=audio)


@pytest.mark.parametrize("delay", [0.0, 0.4, -0.6])
def test_offset_search_finds_the_delay_and_realignment_undoes_it(delay: float) -> None:
    aligner = ImageBindAligner(TimeOracle(25.0), labels=["x"], settings=AlignerSettings(crops=1))
    clip = _timed_clip(delay)
    analysis = aligner.analyse(clip, None)
    assert analysis.sync_offset == pytest.approx(delay, abs=0.05)  # positive: audio late
    assert analysis.sync_confidence > 0
    realigned = aligner.analyse(shift_audio(clip, analysis.sync_offset), None)  # what the pipeline does next
    assert realigned.sync_offset == pytest.approx(0.0, abs=0.05)
    assert realigned.instance.score >= analysis.instance.score - 1e-6


def test_best_offset_refines_between_grid_points() -> None:
    offsets = np.arange(-5, 6) * 0.2
    curve = -((offsets - 0.3) ** 2)
    offset, confidence = _best_offset(offsets, curve, 1.0)
    assert offset == pytest.approx(0.3, abs=1e-6) and 0 < confidence <= 1
    assert _best_offset(offsets, offsets * 0 + 0.5, 1.0)[1] == 0.0  # flat curve: no confidence


def test_label_vocabulary() -> None:
    labels = load_labels()
    assert len(labels) == 527 and labels[0] == "Speech" and labels[-1] == "Field recording"


# --------------------------------------------------------------------------- batched == one clip at a time

BATCH_TOLERANCE = 1e-5
"""How far a batched analysis may be from the one-clip one (cosines, scores, embeddings; float32).

Each row (window, crop, offset, caption) is embedded on its own, so batching
changes nothing but the matmul shapes, and with them possibly the kernels'
summation order: a few float32 ulps (~1e-7) per operation, far below 1e-5.
Measured here: at most 1.2e-7. The offset is compared at `OFFSET_TOLERANCE`.
"""
OFFSET_TOLERANCE = 1e-3
ROUNDED_TOLERANCE = 1e-4 + BATCH_TOLERANCE
"""After rounding to `curation.roles.DECIMALS` (4): a value that lies at a rounding boundary may move by one unit."""
"""Seconds: the parabolic refinement divides a curve difference by the curve's curvature, so it may grow it."""


def _real_clips() -> list:
    """Real clips of different sizes and lengths as the pipeline decodes them (one under 2 s: no offset search)."""
    from curation.config import CurationConfig
    from curation.decode import decode_clips
    from curation.records import InputItem
    from tests.conftest import SAMPLE_DATA

    config = CurationConfig(clip_seconds=3.0)
    names = ("bbb_excerpt.mkv", "techslides_small.mp4", "imageio_realshort.mp4")
    clips = [next(decode_clips(InputItem(str(SAMPLE_DATA / n), n), config)) for n in names]
    short = replace(clips[0], audio=clips[0].audio[: int(1.5 * AUDIO_SAMPLE_RATE)])
    return [*clips, short]


def _close(a, b, tol: float = BATCH_TOLERANCE) -> None:
    for name in ("language", "instance"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x.score is None) == (y.score is None) and x.reason == y.reason, name
        if x.score is not None:
            assert x.raw == pytest.approx(y.raw, abs=tol), name
    assert (a.temporal_windows is None) == (b.temporal_windows is None)
    if a.temporal_windows is not None:
        assert a.temporal_windows == pytest.approx(b.temporal_windows, abs=tol)
    assert a.sync_reason == b.sync_reason
    if a.sync_offset is not None:
        assert a.sync_offset == pytest.approx(b.sync_offset, abs=OFFSET_TOLERANCE)
        assert a.sync_confidence == pytest.approx(b.sync_confidence, abs=tol)
    assert a.heatmap.shape == b.heatmap.shape
    assert np.abs(a.heatmap - b.heatmap).max() <= tol
    assert a.category[:2] == b.category[:2] and a.category[2] == pytest.approx(b.category[2], abs=tol)
    assert a.embedding_rows == b.embedding_rows
    assert np.abs(a.embeddings - b.embeddings).max() <= tol


def test_batched_analysis_equals_one_clip_at_a_time(embedder: ImageBindEmbedder) -> None:
    """Real clips of three sources, with and without captions, one under 2 s, through one batch and one by one.

    The embedder's ``max_batch`` is small and odd, so the batch's chunks cut
    across clips: a clip's rows are embedded next to another clip's.
    """
    clips = _real_clips()
    captions = ["A rabbit in a meadow.", None, "A room with plants.", "   "]
    chunked = ImageBindEmbedder(embedder.model, name="tiny", max_batch=7)
    aligner = ImageBindAligner(chunked, labels=load_labels()[:40])
    batched = aligner.analyse_batch(clips, captions)
    alone = [aligner.analyse(clip, caption) for clip, caption in zip(clips, captions, strict=True)]
    assert [a.embedding_rows for a in batched] == [["audio", "visual", "text"], ["audio", "visual"]] * 2
    assert batched[3].sync_offset is None and batched[0].sync_offset is not None
    assert len({a.heatmap.shape for a in batched}) > 1  # the sources' frame sizes differ
    for a, b in zip(batched, alone, strict=True):
        _close(a, b)
    with pytest.raises(ValueError, match="2 clips but 1 captions"):
        aligner.analyse_batch(clips[:2], captions[:1])


class Counting:
    """The aligner, seen through only ``analyse`` (the one-clip path) or with ``analyse_batch`` counted."""

    def __init__(self, inner: ImageBindAligner, batched: bool) -> None:
        self.inner, self.name, self.batches = inner, inner.name, []
        if batched:
            self.analyse_batch = self._batch

    def analyse(self, clip, caption):
        return self.inner.analyse(clip, caption)

    def _batch(self, clips, captions):
        self.batches.append(len(clips))
        return self.inner.analyse_batch(clips, captions)


def test_model_stages_align_and_realign_in_batches(aligner: ImageBindAligner, caplog: pytest.LogCaptureFixture) -> None:
    """The paper profile's stages send the batch, then its re-aligned clips, as two batches; results as one by one.

    Every clip fails the instance filter (threshold 1) and any offset is
    trusted, so every searched clip is re-aligned: the second pass is
    batched too. A clip without frames makes the batch raise: only that clip
    gets null scores with the reason.
    """
    from curation.analyse import run_model_stages
    from curation.config import CurationConfig
    from curation.profiles import Profile

    clips = _real_clips()
    clips[1] = replace(clips[1], item=replace(clips[1].item, text="A LEGO model runs on a table."))
    config = CurationConfig(profile="paper", instance_threshold=1.0, realign_min_confidence=0.0)
    batched = Counting(aligner, batched=True)
    results = run_model_stages(clips, Profile("paper", aligner=batched), config)
    alone = run_model_stages(clips, Profile("paper", aligner=Counting(aligner, batched=False)), config)
    searched = sum(r.decision.offset is not None and abs(r.decision.offset) >= 0.5 / 25 for r in results)
    assert batched.batches == [4, searched] and searched >= 2
    assert any(r.decision.realigned for r in results)
    for a, b in zip(results, alone, strict=True):
        assert a.decision.realigned == b.decision.realigned and a.failure is None and b.failure is None
        _close(a.decision.analysis, b.decision.analysis, tol=ROUNDED_TOLERANCE)
        assert a.decision.analysis.embedding_rows == (
            ["audio", "visual", "text"] if a.caption.text else ["audio", "visual"]
        )

    broken = [clips[0], replace(clips[2], frames=clips[2].frames[:0]), clips[1]]
    results = run_model_stages(broken, Profile("paper", aligner=Counting(aligner, batched=True)), config)
    assert [r.failure is None for r in results] == [True, False, True]
    assert results[1].failure.stage == "aligner" and "IndexError" in results[1].failure.reason
    assert results[1].decision.analysis.instance.score is None
    assert results[0].decision.analysis.instance.score is not None
    assert "a batch of 3 clips failed (IndexError" in caplog.text
