"""Calibrated scores: the Platt fit, the map applied once in the model stages, the file, and the benchmark's fit."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.check_alignment_report import problems
from curation.analyse import run_model_stages
from curation.calibration import (
    ENVIRONMENT,
    SHIPPED,
    Calibration,
    CueMaps,
    PlattMap,
    calibrate,
    calibration_for,
    calibration_maps,
    calibration_path,
    calibration_state,
    read_calibration,
)
from curation.calibration_fit import examples as calibration_examples
from curation.calibration_fit import fit_calibration, fit_platt
from curation.cli import main
from curation.config import CurationConfig
from curation.evaluate_report import IN_SYNC, SWAPPED, AlignmentReport, VariantOutcome
from curation.profiles import Profile, aligner_name
from curation.roles import Analysis, Score
from curation.sample import alignment_metadata
from curation.signal_aligner import SignalAligner
from tests.conftest import SAMPLE_DATA, TEST_MEDIA
from tests.synthetic import make_clip


def test_fit_recovers_a_known_logistic_map() -> None:
    rng = np.random.default_rng(0)
    raws = rng.uniform(-1, 1, 20_000)
    matched = rng.random(raws.size) < 1 / (1 + np.exp(-(4 * raws - 1)))
    fitted = fit_platt(list(raws), list(matched))
    assert fitted.slope == pytest.approx(4, abs=0.2) and fitted.intercept == pytest.approx(-1, abs=0.1)
    assert fitted.chance_raw == pytest.approx(0.25, abs=0.03)
    assert fit_platt(list(raws), list(matched)) == fitted  # deterministic


def test_separable_data_give_platts_smoothed_targets() -> None:
    """Two matched at raw 1, two swapped at 0: Platt's targets 3/4 and 1/4, met exactly by a finite slope."""
    fitted = fit_platt([1.0, 1.0, 0.0, 0.0], [True, True, False, False])
    assert fitted(1.0) == pytest.approx(0.75, abs=1e-9) and fitted(0.0) == pytest.approx(0.25, abs=1e-9)
    assert fitted.slope == pytest.approx(2 * math.log(3)) and fitted.chance_raw == pytest.approx(0.5)


def test_a_reversed_relation_gives_a_flat_map_at_chance() -> None:
    fitted = fit_platt([0.9, 0.8, 0.1, 0.2], [False, False, True, True])
    assert fitted.slope == 0 and fitted(0.9) == pytest.approx(0.5) and fitted.chance_raw is None
    with pytest.raises(ValueError, match="needs matched and swapped examples, got 2 and 0"):
        fit_platt([0.1, 0.2], [True, True])


def _analysis(raw: float, windows: list[float]) -> Analysis:
    return replace(
        Analysis.missing("unused"), instance=Score(0.123, raw), temporal_windows=windows, temporal_reason=None
    )


def test_calibrate_maps_scores_and_keeps_the_raw_values() -> None:
    fitted = PlattMap(2 * math.log(3), -math.log(3))
    calibration = Calibration("signal-v1", fitted, PlattMap(1.0, -0.25))
    out = calibrate(_analysis(0.5, [0.25, 1.25]), calibration)
    assert out.instance.score == 0.5 and out.instance.raw == 0.5  # raw 0.5 is this map's chance point
    assert calibrate(_analysis(1.0, [0.25]), calibration).instance.score == 0.75
    assert out.temporal_windows == [0.5, round(1 / (1 + math.exp(-1)), 4)] and out.temporal_raw == [0.25, 1.25]
    assert calibrate(_analysis(0.5, [0.25]), None) == _analysis(0.5, [0.25])
    metadata = alignment_metadata(_decision(out), CurationConfig())
    assert metadata["instance"]["raw"] == 0.5 and metadata["temporal"]["raw"] == 0.75  # mean of the raw windows
    assert metadata["instance"]["passed"] and metadata["temporal"]["passed"]


def test_an_uninformative_map_gives_no_score_with_its_reason() -> None:
    flat = PlattMap(0.0, 0.0, "raw value tells in-sync from swapped clips no better than chance")
    out = calibrate(_analysis(0.7, [0.3]), Calibration("signal-v1", flat, flat))
    assert out.instance.score is None and out.instance.raw == 0.7 and out.temporal_windows is None
    assert (
        out.instance.reason
        == "calibration of signal-v1: raw value tells in-sync from swapped clips no better than chance"
    )
    assert out.temporal_reason == out.instance.reason and out.temporal_raw == [0.3]
    metadata = alignment_metadata(_decision(out), CurationConfig())
    assert metadata["flags"] == ["instance"] and metadata["temporal"]["passed"] is None  # no evidence, no pass


def test_a_cue_with_maps_of_its_own_is_calibrated_with_them() -> None:
    """The lips' map for a lip-path clip, the aligner-wide map for a cue without one, or for the map it lacks."""
    pooled, lips = PlattMap(1.0, 0.0), PlattMap(4.0, -2.0)
    flat = PlattMap(0.0, 0.0, "no better than chance")
    calibration = Calibration(
        "cues-v2", pooled, pooled, cues={"lips": CueMaps(lips, None), "signal": CueMaps(flat, flat)}
    )
    on_lips = calibrate(replace(_analysis(0.5, [0.25]), cue="lips"), calibration)
    assert on_lips.instance.score == 0.5 and on_lips.temporal_windows == [round(pooled(0.25), 4)]
    assert calibrate(replace(_analysis(0.75, [0.25]), cue="lips"), calibration).instance.score == round(lips(0.75), 4)
    for cue in (None, "hands"):  # no cue, or one the fit never saw: the aligner-wide maps
        assert calibrate(replace(_analysis(0.5, [0.25]), cue=cue), calibration).instance.score == round(pooled(0.5), 4)
    on_signal = calibrate(replace(_analysis(0.5, [0.25]), cue="signal"), calibration)
    assert on_signal.instance.score is None and on_signal.temporal_windows is None
    assert on_signal.instance.reason == "calibration of cues-v2, signal cue: no better than chance"
    shared = Calibration("cues-v2", flat, flat, cues={"lips": CueMaps(None, flat)})  # one map object, two roles
    on_shared = calibrate(replace(_analysis(0.5, [0.25]), cue="lips"), shared)
    assert on_shared.instance.reason == "calibration of cues-v2: no better than chance"  # the aligner's map
    assert on_shared.temporal_reason == "calibration of cues-v2, lips cue: no better than chance"  # the cue's own


def test_the_report_says_what_calibrate_does_to_each_cues_scores(tmp_path: Path) -> None:
    """``calibration_maps``: per cue and score, the state that `calibrate` gives such a clip's score."""
    pooled, flat = PlattMap(1.0, 0.0), PlattMap(0.0, 0.0, "no better than chance")
    path = tmp_path / "cues-v2.json"
    Calibration("cues-v2", flat, pooled, cues={"lips": CueMaps(PlattMap(4.0, -2.0), None)}).write(path)
    config = CurationConfig(calibration=str(path))
    rows = calibration_maps("cues-v2", config)
    assert [(r["cue"], r["score"], r["map"], r["state"], r["reason"]) for r in rows] == [
        ("lips", "instance", "cues-v2, lips cue", "calibrated", None),
        ("lips", "temporal", "cues-v2", "calibrated", None),  # the cue has no window map: the aligner's
        (None, "instance", "cues-v2", "null", "no better than chance"),
        (None, "temporal", "cues-v2", "calibrated", None),
    ]
    calibration = calibration_for("cues-v2", config)
    for row in rows:
        out = calibrate(replace(_analysis(0.5, [0.25]), cue=row["cue"]), calibration)
        score = out.instance.score if row["score"] == "instance" else out.temporal_windows
        assert (score is None) == (row["state"] == "null"), row
    Calibration("cues-v2", None, None).write(path)
    assert {(r["state"], r["map"]) for r in calibration_maps("cues-v2", config)} == {("uncalibrated", None)}
    assert calibration_maps("cues-v2", CurationConfig(calibration="none")) == []


def test_finalize_reports_the_calibration_maps_beside_the_fingerprinted_state() -> None:
    from curation.finalize import Totals, _report

    config = CurationConfig(calibration=str(SHIPPED / "cues-v2.json"))
    report = _report(Totals(), {}, config, "plan")
    assert report["calibration_maps"] == calibration_maps("cues-v2", config) != []
    assert report["calibration"] == calibration_state("cues-v2", config)  # no maps in what the fingerprint reads
    assert "calibration_maps" not in report["calibration"]


def _decision(analysis: Analysis):
    from curation.analyse import Decision

    return Decision(make_clip(seconds=2.0), analysis, None, None, "n/a", False)


def test_the_file_round_trips_and_bad_files_are_named(tmp_path: Path) -> None:
    calibration = Calibration("signal-v1", PlattMap(1.5, -0.2), None, {"date": "2026-12-02", "clips": ["a#0"]})
    path = tmp_path / "c.json"
    calibration.write(path)
    assert read_calibration(path) == calibration
    first = path.read_bytes()
    read_calibration(path).write(path)
    assert path.read_bytes() == first
    with_cues = replace(calibration, cues={"lips": CueMaps(PlattMap(3.0, -1.0, None), None)})
    with_cues.write(path)
    assert read_calibration(path) == with_cues
    old = {k: v for k, v in calibration.to_dict().items() if k != "cues"} | {"format": 1}  # before per-cue maps
    path.write_text(json.dumps(old))
    assert read_calibration(path) == calibration
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**calibration.to_dict(), "instance": {"slope": -1, "intercept": 0}}))
    with pytest.raises(ValueError, match=f"{bad}: instance slope must be finite and >= 0"):
        read_calibration(bad)
    bad.write_text(json.dumps({**calibration.to_dict(), "cues": []}))
    with pytest.raises(ValueError, match="'cues' must map each cue's name to its maps"):
        read_calibration(bad)
    bad.write_text(json.dumps({**calibration.to_dict(), "cues": {"lips": {"instance": {"slope": "x"}}}}))
    with pytest.raises(ValueError, match="cue 'lips': instance needs a numeric 'slope' and 'intercept'"):
        read_calibration(bad)
    bad.write_text("[]")
    with pytest.raises(ValueError, match="not a calibration file"):
        read_calibration(bad)
    with pytest.raises(ValueError, match="fitted on aligner 'signal-v1', not 'cues-v2'"):
        calibration_for("cues-v2", CurationConfig(calibration=str(path)))


def test_the_shipped_file_is_the_default_and_the_paper_profile_is_uncalibrated(monkeypatch) -> None:
    monkeypatch.delenv(ENVIRONMENT)
    config = CurationConfig()
    cpu = aligner_name(config)
    assert cpu == "cues-v2" and calibration_path(cpu, config) == SHIPPED / "cues-v2.json"
    shipped = calibration_state(cpu, config)
    assert shipped["calibrated"] and shipped["file"] == "cues-v2.json" and len(shipped["sha256"]) == 64
    assert read_calibration(SHIPPED / "cues-v2.json").provenance["fits"]["instance"]["recordings"] >= 2
    assert calibration_path("signal-v1", config) is None  # no profile's aligner: nothing shipped for it
    paper = aligner_name(CurationConfig(profile="paper"))
    assert paper == "imagebind-alignment" and calibration_state(paper, config)["calibrated"] is False  # no weights
    assert calibration_path("signal-v1", CurationConfig(calibration="none")) is None


def test_the_model_stages_apply_the_calibration_once(tmp_path: Path) -> None:
    path = tmp_path / "signal-v1.json"
    Calibration("signal-v1", PlattMap(3.0, -1.0), PlattMap(2.0, -0.5)).write(path)
    clip = make_clip(seconds=4.0, seed=3)
    profile = Profile("cpu", aligner=SignalAligner())
    plain = run_model_stages([clip], profile, CurationConfig(calibration="none"))[0].decision.analysis
    mapped = run_model_stages([clip], profile, CurationConfig(calibration=str(path)))[0].decision.analysis
    assert mapped.instance.raw == plain.instance.raw is not None
    assert mapped.instance.score == round(1 / (1 + math.exp(-(3.0 * plain.instance.raw - 1.0))), 4)
    assert mapped.temporal_raw == plain.temporal_windows
    assert mapped.temporal_windows == [round(1 / (1 + math.exp(-(2.0 * w - 0.5))), 4) for w in plain.temporal_windows]


def _outcome(clip: str, variant: str, raw: float, recording: str) -> VariantOutcome:
    return VariantOutcome(
        clip, "unknown", variant, 0.0, None, None, None, None, None, None, None, None, None, False, [], False, False,
        recording=recording, raw_instance=raw, raw_windows=[raw],
    )  # fmt: skip


def _report(outcomes: list[VariantOutcome]) -> AlignmentReport:
    return AlignmentReport("cpu", {"aligner": "signal-v1"}, {}, [0.2], ["x"], outcomes, [], {})


def test_the_fit_is_judged_leaving_each_recording_out() -> None:
    good = [
        _outcome(f"r{i}#0", variant, raw, f"r{i}#0")
        for i in range(4)
        for variant, raw in ((IN_SYNC, 0.6 + 0.05 * i), (SWAPPED, 0.1 + 0.05 * i))
    ]
    calibration = fit_calibration(_report(good))
    fit = calibration.provenance["fits"]["instance"]
    assert fit["recordings"] == 4 and fit["matched"] == fit["swapped"] == 4
    assert fit["leave_one_recording_out"]["auroc"] == 1.0 and fit["informative"]
    assert calibration.instance.uninformative is None and calibration.instance(0.7) > 0.5 > calibration.instance(0.2)
    assert calibration.cues == {}  # no cue recorded: the aligner-wide maps only
    noise = [replace(o, raw_instance=0.5, raw_windows=[0.5]) for o in good]
    flat = fit_calibration(_report(noise))
    assert flat.instance.uninformative and "no better than chance" in flat.instance.uninformative
    assert not flat.provenance["fits"]["temporal"]["informative"]


def test_a_map_that_ranks_but_misjudges_held_out_recordings_is_uninformative() -> None:
    """Each recording's own soundtrack scores 0.2 above its swap, but the recordings sit 0.5 apart: held out, the
    ranking is above chance, yet the other recordings' map puts a held-out recording's clips on the wrong side of
    0.5 and its log loss is worse than saying 0.5 for every clip. A filter at 0.5 would be judging on noise."""
    levels = [
        _outcome(f"r{i}#0", variant, level + (0.2 if variant == IN_SYNC else 0.0), f"r{i}#0")
        for i, level in enumerate((0.0, 0.5, 1.0))
        for variant in (IN_SYNC, SWAPPED)
    ]
    calibration = fit_calibration(_report(levels))
    held_out = calibration.provenance["fits"]["instance"]["leave_one_recording_out"]
    assert held_out["auroc"] > 0.5 and held_out["log_loss"] > math.log(2)
    assert calibration.instance.slope > 0
    assert calibration.instance.uninformative.startswith("its held-out probabilities do no better than 0.5")
    assert f"log loss {held_out['log_loss']:.3f}" in calibration.instance.uninformative
    assert not calibration.provenance["fits"]["instance"]["informative"]


def test_each_cue_is_fitted_on_its_own_clips() -> None:
    """Lip-path clips that tell matched from swapped and signal-path clips that do not: pooled, the signal clips'
    noise would blur the lips' map; per cue, the lips get an informative map and the signal path none."""
    lips = [
        replace(_outcome(f"r{i}#0", variant, raw, f"r{i}#0"), cue="lips")
        for i in range(3)
        for variant, raw in ((IN_SYNC, 0.5 + 0.05 * i), (SWAPPED, 0.05 * i))
    ]
    signal = [
        replace(_outcome(f"s{i}#0", variant, raw, f"s{i}#0"), cue="signal")
        for i in range(3)
        for variant, raw in ((IN_SYNC, 0.1 + 0.2 * i), (SWAPPED, 0.5 - 0.2 * i))
    ]
    calibration = fit_calibration(_report(lips + signal))
    assert sorted(calibration.cues) == ["lips", "signal"]
    assert calibration.cues["lips"].instance.uninformative is None and calibration.cues["lips"].instance(0.6) > 0.5
    assert calibration.cues["signal"].instance.uninformative
    fits = calibration.provenance["cues"]
    assert fits["lips"]["instance"]["matched"] == fits["lips"]["instance"]["swapped"] == 3
    assert fits["lips"]["instance"]["leave_one_recording_out"]["auroc"] == 1.0
    one_class = fit_calibration(_report(lips + [o for o in signal if o.variant == IN_SYNC]))
    assert "signal" not in one_class.cues  # no swapped signal clip: the aligner-wide maps serve the cue
    assert one_class.provenance["cues"]["signal"] == {}
    assert Calibration.from_dict(json.loads(json.dumps(calibration.to_dict()))) == calibration
    one_face = fit_calibration(_report(lips[:2] + signal))  # one talking-face recording: no out-of-sample judgement
    assert one_face.provenance["cues"]["lips"]["instance"]["leave_one_recording_out"]["auroc"] is None
    assert one_face.cues["lips"].instance.uninformative.startswith("not judged out of sample")


def test_leaving_a_recording_out_leaves_out_the_swaps_that_carry_its_soundtrack() -> None:
    """A swap holds two recordings (frames, soundtrack): the fit that leaves r0 out must not see r0's voice on r2's
    frames. Each recording's held-out predictions are recomputed here from the clips that hold neither."""
    raws = {"r0": (0.9, 0.1), "r1": (0.7, 0.4), "r2": (0.6, 0.8)}
    partner = {"r0": "r1", "r1": "r2", "r2": "r0"}
    clips = [
        replace(_outcome(f"{r}#0", variant, raw, f"{r}#0"), partner=None if variant == IN_SYNC else f"{partner[r]}#0")
        for r, pair in raws.items()
        for variant, raw in zip((IN_SYNC, SWAPPED), pair, strict=True)
    ]
    examples, _ = calibration_examples(_report(clips))
    assert [e.soundtrack for e in examples] == ["r0#0", "r1#0", "r1#0", "r2#0", "r2#0", "r0#0"]
    truth, held = [], []
    for r in raws:
        rest = [e for e in examples if f"{r}#0" not in (e.recording, e.soundtrack)]
        fitted = fit_platt([e.raw for e in rest], [e.matched for e in rest])
        for e in examples:
            if e.recording == f"{r}#0":
                truth.append(e.matched)
                held.append(fitted(e.raw))
    y, q = np.array(truth, float), np.array(held)
    fit = fit_calibration(_report(clips)).provenance["fits"]["instance"]
    assert fit["leave_one_recording_out_unscored"] == 0
    assert fit["leave_one_recording_out"]["log_loss"] == round(
        float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))), 6
    )
    seen = [e for e in examples if e.recording != "r0#0"]  # leaving out r0's frames only, as before
    leaky = fit_platt([e.raw for e in seen], [e.matched for e in seen])
    assert leaky(0.9) != held[0]  # seeing r0's voice on r2's frames would have changed r0's held-out score


def test_evaluate_alignment_fits_a_calibration_file(tmp_path: Path, capsys) -> None:
    out, path = tmp_path / "report", tmp_path / "cues-v2.json"
    argv = [str(SAMPLE_DATA), str(TEST_MEDIA), "-o", str(out), "--clip-seconds", "5", "--offsets", "0.36"]
    assert main(["evaluate-alignment", *argv, "--fit-calibration", str(path)]) == 0
    calibration = read_calibration(path)
    report = AlignmentReport.from_dict(json.loads((out / "report.json").read_text()))
    in_sync = [o for o in report.variants if o.variant == IN_SYNC]
    fit = calibration.provenance["fits"]["instance"]
    assert calibration.aligner == "cues-v2" and fit["matched"] == len(
        [o for o in in_sync if o.raw_instance is not None]
    )
    assert fit["swapped"] == len([o for o in report.variants if o.variant == SWAPPED and o.raw_instance is not None])
    assert fit["recordings"] == len({o.recording for o in in_sync})
    assert calibration.provenance["clips"] == sorted(o.clip for o in in_sync)
    assert f"{path}: calibration of cues-v2" in capsys.readouterr().out
    assert main(["evaluate-alignment", *argv, "--fit-calibration", str(path)]) == 2  # not overwritten
    assert "already exists; pass --overwrite" in capsys.readouterr().err

    assert problems(report.to_dict()) == []  # the checker CI runs, on a report it generated
    broken = report.to_dict()
    broken["figures"]["all"]["raw_auroc"] = 1.5
    broken["figures"]["all"]["within_near"] = {"count": 3, "total": 0, "value": None}
    assert problems(broken) == [
        "figures['all'].within_near: nothing counted (total 0)",
        "figures['all'].raw_auroc: 1.5 is outside [0, 1]",
    ]
