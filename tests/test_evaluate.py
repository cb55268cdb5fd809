"""``acav1m evaluate-alignment``: variants with known truth, and a report whose figures are computed.

The figures are asserted only as computed and within [0, 1], never against a
threshold of the method's quality: the benchmark measures the profile, it does
not grade it (its figures on real footage are in BENCHMARKS.md and docs/alignment.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.cli import main
from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.evaluate import evaluate
from curation.evaluate_report import (
    CONTAINER_SHIFT,
    CONTENT_SHIFT,
    IN_SYNC,
    SWAPPED,
    AlignmentReport,
    Figures,
    auroc,
)
from curation.records import InputItem
from curation.variants import delayed, measured_delay, write_container_shift
from tests.conftest import SAMPLE_DATA, SPEECH_CLIP, TEST_MEDIA
from tests.synthetic import make_clip, write_video_file

SR = AUDIO_SAMPLE_RATE
PRIMING = 1024 / 48_000
"""AAC's encoder delay at 48 kHz: the most a container shift's true delay may differ from the requested one."""


def _values(figures: Figures) -> list[float | None]:
    """Every figure's value: the shares, the pass rates and the AUROC."""
    shares = [
        figures.within_close,
        figures.within_near,
        figures.confident,
        figures.confident_within_close,
        figures.confident_within_near,
        figures.matched_above_swapped,
        figures.instance_null,
        figures.offset_null,
        *figures.passed.values(),
    ]
    return [share.value for share in shares] + [figures.auroc]


def _check_figures(report: AlignmentReport) -> None:
    for group, figures in report.figures.items():
        values = _values(figures)
        assert all(v is None or 0.0 <= v <= 1.0 for v in values), (group, values)
    figures = report.figures["all"]
    confident_only = (figures.confident_within_close, figures.confident_within_near)
    everything_else = [figures.within_close, figures.within_near, figures.confident, figures.matched_above_swapped]
    everything_else += [figures.instance_null, figures.offset_null, *figures.passed.values()]
    assert all(share.value is not None for share in everything_else) and figures.auroc is not None, _values(figures)
    # The shares among confident shifts are empty exactly when no shift is confident.
    assert all((share.value is None) == (figures.confident.value == 0.0) for share in confident_only), _values(figures)


@pytest.mark.parametrize("seconds", [0.3, -0.52, 0.96])
def test_content_shift_truth_is_exact(seconds: float) -> None:
    clip = make_clip(seconds=4.0, seed=2)
    shifted, truth = delayed(clip, seconds)
    lag = int(round(seconds * SR))
    assert truth == lag / SR
    if lag > 0:  # the audio is late: the original's samples start ``lag`` samples later, zeros before
        assert np.array_equal(shifted.audio[lag:], clip.audio[:-lag]) and not shifted.audio[:lag].any()
    else:
        assert np.array_equal(shifted.audio[:lag], clip.audio[-lag:]) and not shifted.audio[lag:].any()
    assert measured_delay(clip.audio, shifted.audio, abs(seconds) + 0.25)[0] == truth
    assert shifted.frames is clip.frames


def _direct_delay(original: np.ndarray, variant: np.ndarray, around: float, reach: float = 0.05) -> float:
    """The lag maximising the normalised correlation, summed lag by lag in the time domain (no FFT)."""
    best, best_lag = -np.inf, 0
    a, b = original.astype(np.float64), variant.astype(np.float64)
    for lag in range(int(round((around - reach) * SR)), int(round((around + reach) * SR)) + 1):
        x, y = (b[lag:], a[: len(b) - lag]) if lag >= 0 else (b, a[-lag:])
        n = min(len(x), len(y))
        x, y = x[:n], y[:n]
        value = float(x @ y) / np.sqrt(float(x @ x) * float(y @ y))
        if value > best:
            best, best_lag = value, lag
    return best_lag / SR


@pytest.mark.parametrize("seconds", [0.36, -0.6])
def test_container_shift_truth_is_what_cross_correlation_says(tmp_path: Path, seconds: float) -> None:
    clip = make_clip(seconds=4.0, seed=4)
    path = write_container_shift(clip, seconds, tmp_path / "shifted.mp4")
    config = CurationConfig(clip_seconds=10.0, max_clips_per_input=1)
    decoded = next(decode_clips(InputItem(str(path), "shifted"), config))
    truth, peak = measured_delay(clip.audio, decoded.audio, abs(seconds) + 0.25)
    assert truth is not None and peak > 0.5
    assert abs(truth - _direct_delay(clip.audio, decoded.audio, seconds)) <= 1 / SR
    assert abs(truth - seconds) <= PRIMING  # the container moved the audio by about the requested delay


def test_auroc_counts_ties_half() -> None:
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.1], [0.9]) == 0.0
    assert auroc([0.5, 0.5], [0.5]) == 0.5
    assert auroc([], [0.3]) is None


def test_synthetic_report_swaps_different_soundtracks(tmp_path: Path) -> None:
    """A second copy of one recording (other bytes, other container) is never chosen as the swapped soundtrack."""
    clips = {name: make_clip(seconds=3.0, seed=seed) for name, seed in (("a", 0), ("b", 1))}
    write_video_file(tmp_path / "a.mp4", clips["a"])
    write_video_file(tmp_path / "a_copy.mkv", clips["a"], container="matroska")
    write_video_file(tmp_path / "b.mp4", clips["b"])
    inputs = [str(tmp_path / name) for name in ("a.mp4", "a_copy.mkv", "b.mp4")]
    report = evaluate(inputs, tmp_path / "report", CurationConfig(), offsets=[0.28, -0.44])

    swaps = {o.clip: o.partner for o in report.variants if o.variant == SWAPPED}
    a, copy, b = (f"{path}#0" for path in inputs)
    assert swaps[a] == b and swaps[copy] == b and swaps[b] == a
    assert {o.clip: o.recording for o in report.variants} == {a: a, copy: a, b: b}  # a copy is the same recording
    assert measured_delay(clips["a"].audio, clips["b"].audio, 1.0)[0] is None  # two different soundtracks
    assert [o.truth for o in report.variants if o.clip == a and o.variant == CONTENT_SHIFT] == [-0.44, 0.28]
    _check_figures(report)
    written = json.loads((tmp_path / "report" / "report.json").read_text())
    rebuilt = AlignmentReport.from_dict(written)
    assert rebuilt.variants == report.variants and rebuilt.figures == report.figures and rebuilt.to_dict() == written


def test_a_swap_takes_a_soundtrack_of_the_same_kind_first(tmp_path: Path) -> None:
    """Another voice on a talking face, not a machine's clatter: a clip of a kind with another video swaps with it."""
    inputs = [str(write_video_file(tmp_path / f"{n}.mp4", make_clip(seconds=3.0, seed=i))) for i, n in enumerate("abc")]
    kinds = tmp_path / "kinds.csv"
    kinds.write_text("path,kind\na.mp4,speech_face\nb.mp4,action\nc.mp4,speech_face\n", encoding="utf-8")
    report = evaluate(inputs, tmp_path / "report", CurationConfig(), offsets=[0.2], kinds_path=kinds)
    a, b, c = (f"{path}#0" for path in inputs)
    swaps = {o.clip: o.partner for o in report.variants if o.variant == SWAPPED}
    assert swaps == {a: c, b: c, c: a}  # b has no other action clip: the next clip of any kind


def test_one_recording_alone_has_no_swap_partner(tmp_path: Path) -> None:
    clip = make_clip(seconds=3.0, seed=0)
    inputs = [
        str(write_video_file(tmp_path / "a.mp4", clip)),
        str(write_video_file(tmp_path / "a.mkv", clip, container="matroska")),
    ]
    report = evaluate(inputs, tmp_path / "report", CurationConfig(), offsets=[0.2])
    assert not [o for o in report.variants if o.variant == SWAPPED]
    assert sorted(e.input for e in report.excluded if e.reason == "no_swap_partner") == sorted(f"{p}#0" for p in inputs)
    assert report.figures["all"].auroc is None and report.figures["all"].matched_above_swapped.total == 0


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AlignmentReport]:
    out = tmp_path_factory.mktemp("evaluate") / "report"
    kinds = out.parent / "kinds.csv"
    kinds.write_text(
        f"path,kind\n{SPEECH_CLIP.name},speech_face\ntechslides_small.mp4,action\nnot_here.mp4,music\n",
        encoding="utf-8",
    )
    argv = [str(SAMPLE_DATA), str(TEST_MEDIA), "-o", str(out), "--clip-seconds", "5", "--offsets", "-0.36", "0.6"]
    assert main(["evaluate-alignment", *argv, "--kinds", str(kinds)]) == 0
    return out, AlignmentReport.from_dict(json.loads((out / "report.json").read_text()))


def test_evaluate_alignment_on_the_real_clips(real_report: tuple[Path, AlignmentReport]) -> None:
    out, report = real_report
    assert report.profile == "cpu" and report.offsets == [-0.36, 0.6]
    _check_figures(report)
    assert set(report.figures) == {"all", "action", "speech_face", "unknown"}
    assert report.unused_kinds == ["not_here.mp4"]
    speech = [o for o in report.variants if o.kind == "speech_face"]
    assert speech and all(o.clip.startswith(f"{TEST_MEDIA}/{SPEECH_CLIP.name}#") for o in speech)
    assert {o.variant for o in speech} == {IN_SYNC, CONTENT_SHIFT, CONTAINER_SHIFT, SWAPPED}
    assert [o.cue for o in speech if o.variant == IN_SYNC] == ["lips"]  # the calibration map it is fitted into
    assert {o.cue for o in report.variants if o.kind == "action"} == {"signal"}
    for o in report.variants:
        if o.variant == CONTENT_SHIFT:
            assert o.truth == round(o.nominal * SR) / SR
        if o.variant == CONTAINER_SHIFT and o.truth is not None:
            assert abs(o.truth - o.nominal) <= PRIMING
        if o.variant == SWAPPED:
            assert o.partner is not None and o.partner.split("#")[0] != o.clip.split("#")[0]
    silent = [e for e in report.excluded if e.reason == "silent_audio"]
    assert [e for e in silent if "imageio_cockatoo_silent.mp4#" in e.input]  # the whole input is silent
    # anything else left out as silent is a variant (a quiet clip delayed, its zero padding lowering the level)
    assert all(e.detail == "after the change" for e in silent if "imageio_cockatoo_silent.mp4#" not in e.input)
    assert {e.reason for e in report.excluded} >= {"silent_audio", "skipped_not_media"}
    markdown = (out / "report.md").read_text()
    assert "| instance AUROC, in-sync vs swapped |" in markdown and "imageio_cockatoo_silent.mp4#0" in markdown


def test_a_report_is_not_overwritten_and_bad_offsets_are_refused(
    real_report: tuple[Path, AlignmentReport], capsys
) -> None:
    out, _ = real_report
    before = (out / "report.json").read_bytes()
    assert main(["evaluate-alignment", str(SPEECH_CLIP), "-o", str(out), "--offsets", "0.2"]) == 2
    assert "already holds report.json, report.md; pass --overwrite" in capsys.readouterr().err
    assert (out / "report.json").read_bytes() == before
    assert main(["evaluate-alignment", str(SPEECH_CLIP), "-o", str(out.parent / "x"), "--offsets", "1.5"]) == 2
    assert "--offsets: 1.5 must be a non-zero number of seconds within ±1.0" in capsys.readouterr().err
