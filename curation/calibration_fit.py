"""Fitting a calibration (`curation.calibration`) on an alignment benchmark's matched and swapped clips.

The fit is Platt's: a logistic regression of "matched" on the raw value, with
Platt's smoothed targets ``(n+ + 1) / (n+ + 2)`` and ``1 / (n- + 2)`` so that
separable data (a good aligner on a few clips) still gives a finite slope, by
Newton's method from a fixed start (deterministic). The slope is held at 0 or
above: a map that turned higher raw evidence into a lower score would be fitted
to the noise of a handful of clips, not a property of the aligner; when the
data ask for a negative slope the map is flat at the matched share, and its
file says so (``chance_raw`` null).

The figures it records are in-sample (the fit's own clips) and
leave-one-recording-out: each recording's clips (a clip and any other whose
soundtrack is the same recording) scored by a map fitted without them, so that
no clip is judged by a fit that saw it or its copies. A map whose
leave-one-recording-out AUROC is not above 0.5 (in-sample when only one
recording remains to fit on), or whose held-out probabilities have a log
loss no lower than saying 0.5 for every clip (ln 2), is marked uninformative:
its scores become null with the reason, never a number that looks like
evidence. The second test is the one a filter at 0.5 needs: a map can rank
held-out clips slightly better than chance and still put them on the wrong
side of 0.5 more often than a coin would. A swapped
clip carries two recordings, its frames' and its soundtrack's: leaving a
recording out leaves out both kinds of clip that hold it.

An aligner that reads different cues on different clips (`Analysis.cue`) gets
the same fit once more per cue, on that cue's examples alone, where the cue has
matched and swapped ones; its figures are judged the same way, except that a
cue's map must be judged out of sample (two recordings at least): it replaces
the aligner-wide map for that cue's clips, so it has to earn that on clips it
did not see.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation.calibration import Calibration, CueMaps, PlattMap
from curation.evaluate_report import IN_SYNC, SWAPPED, AlignmentReport, auroc

CHANCE_LOG_LOSS = math.log(2.0)
"""The log loss of saying 0.5 for every clip: a map that does no better out of sample is uninformative."""

NEWTON_STEPS = 50
TOLERANCE = 1e-12


@dataclass(frozen=True)
class Example:
    """One raw value with its truth (matched or swapped) and the recording it came from (the left-out group)."""

    raw: float
    matched: bool
    recording: str
    """The recording of the clip's frames: the group it is scored in when left out."""
    cue: str | None = None
    soundtrack: str = ""
    """The recording of its soundtrack: its own for an in-sync clip, its partner's for a swap (the fit that leaves
    that recording out does not train on it either)."""

    def holds(self, recording: str) -> bool:
        return recording in (self.recording, self.soundtrack)


def fit_platt(raws: list[float], matched: list[bool]) -> PlattMap:
    """Platt's logistic map of ``raws`` onto P(matched), slope >= 0; an error when either class is missing."""
    x = np.asarray(raws, np.float64)
    y = np.asarray(matched, bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        raise ValueError(f"calibration: needs matched and swapped examples, got {positives} and {negatives}")
    target = np.where(y, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    flat = PlattMap(0.0, float(np.log(target.mean() / (1 - target.mean()))))
    slope, intercept = _newton(x, target)
    if slope <= 0:
        return flat
    return PlattMap(slope, intercept)


def _newton(x: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood (slope, intercept) of the logistic model for soft ``target``s, by damped Newton steps."""
    design = np.stack([x, np.ones_like(x)], axis=1)
    w = np.zeros(2)
    for _ in range(NEWTON_STEPS):
        p = 1 / (1 + np.exp(-(design @ w)))
        gradient = design.T @ (p - target)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w = w - step
        if np.max(np.abs(step)) < TOLERANCE:
            break
    return float(w[0]), float(w[1])


def fit_figures(examples: list[Example], fitted: PlattMap) -> dict[str, Any]:
    """In-sample and leave-one-recording-out figures of the map: log loss, Brier score, accuracy at 0.5, AUROC."""
    truth = [e.matched for e in examples]
    in_sample = [fitted(e.raw) for e in examples]
    out = []
    recordings = sorted({e.recording for e in examples})
    for recording in recordings:
        rest = [e for e in examples if not e.holds(recording)]
        try:
            held = fit_platt([e.raw for e in rest], [e.matched for e in rest])
        except ValueError:  # the rest lacks a class: this recording cannot be scored out of sample
            held = None
        out += [(i, None if held is None else held(e.raw)) for i, e in enumerate(examples) if e.recording == recording]
    scored = [(truth[i], p) for i, p in sorted(out) if p is not None]
    return {
        "recordings": len(recordings),
        "in_sample": _scores(truth, in_sample),
        "leave_one_recording_out": _scores([t for t, _ in scored], [p for _, p in scored]),
        "leave_one_recording_out_unscored": len(examples) - len(scored),
    }


def _scores(truth: list[bool], p: list[float]) -> dict[str, float | int | None]:
    if not truth:
        return {"examples": 0, "log_loss": None, "brier": None, "accuracy_at_half": None, "auroc": None}
    y, q = np.asarray(truth, np.float64), np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return {
        "examples": len(truth),
        "log_loss": _r(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))),
        "brier": _r(np.mean((q - y) ** 2)),
        "accuracy_at_half": _r(np.mean((q > 0.5) == (y == 1))),
        "auroc": None if (a := auroc(list(q[y == 1]), list(q[y == 0]))) is None else _r(a),
    }


def _r(value: float) -> float:
    return round(float(value), 6)


def examples(report: AlignmentReport) -> tuple[list[Example], list[Example]]:
    """The instance and per-window examples: in-sync clips matched, swapped ones not, raw values as decoded."""
    recordings = {o.clip: o.recording for o in report.variants}
    instance, windows = [], []
    for o in report.variants:
        if o.variant not in (IN_SYNC, SWAPPED):
            continue
        matched = o.variant == IN_SYNC
        soundtrack = o.recording if matched else recordings.get(o.partner or "", o.partner or "")
        if o.raw_instance is not None:
            instance.append(Example(o.raw_instance, matched, o.recording, o.cue, soundtrack))
        windows += [Example(w, matched, o.recording, o.cue, soundtrack) for w in o.raw_windows or []]
    return instance, windows


def _today(today: datetime.date | None) -> str:
    return (today or datetime.datetime.now(datetime.UTC).date()).isoformat()


def fit_calibration(report: AlignmentReport, today: datetime.date | None = None) -> Calibration:
    """The calibration of the report's aligner, from its in-sync and swapped clips, with its provenance."""
    aligner = report.models.get("aligner")
    if not aligner:
        raise ValueError("calibration: the report names no aligner")
    instance, windows = examples(report)
    maps, fits = _fit_maps(instance, windows, cue=None)
    cues, cue_fits = {}, {}
    for cue in sorted({e.cue for e in instance + windows if e.cue is not None}):
        own, cue_fits[cue] = _fit_maps([e for e in instance if e.cue == cue], [e for e in windows if e.cue == cue], cue)
        if own["instance"] is not None or own["temporal"] is not None:  # else the aligner-wide maps serve the cue
            cues[cue] = CueMaps(own["instance"], own["temporal"])
    provenance = {
        "date": _today(today),
        "method": "Platt (logistic, smoothed targets, slope >= 0); acav1m evaluate-alignment --fit-calibration",
        "profile": report.profile,
        "models": report.models,
        "offsets": report.offsets,
        "inputs": report.inputs,
        "clips": sorted({o.clip for o in report.variants if o.variant == IN_SYNC}),
        "fits": fits,
        "cues": cue_fits,
    }
    return Calibration(aligner, maps["instance"], maps["temporal"], provenance, cues)


def _fit_maps(
    instance: list[Example], windows: list[Example], cue: str | None
) -> tuple[dict[str, PlattMap | None], dict[str, Any]]:
    """The instance and window maps of these examples with their figures, for one ``cue`` or (None) aligner-wide.

    A map without both classes is None, except that the aligner-wide instance map is required (an error). Without
    out-of-sample figures (one recording) the aligner-wide maps are judged in sample; a cue's map, which would
    replace the aligner-wide one, is not used."""
    maps: dict[str, PlattMap | None] = {}
    fits: dict[str, Any] = {}
    for name, group in (("instance", instance), ("temporal", windows)):
        try:
            fitted = fit_platt([e.raw for e in group], [e.matched for e in group])
        except ValueError as exc:
            if name == "instance" and cue is None:
                raise ValueError(f"{exc} (instance scores of in-sync and swapped clips)") from exc
            maps[name] = None  # no windows (clips shorter than one, an aligner without them), or one class only
            continue
        figures = fit_figures(group, fitted)
        held_out = figures["leave_one_recording_out"]["auroc"]
        reason = None
        if held_out is None and cue is not None:
            reason = "not judged out of sample (no recording can be left out with matched and swapped clips left)"
        else:
            judged = held_out if held_out is not None else figures["in_sample"]["auroc"]
            scope = "leave-one-recording-out" if held_out is not None else "in-sample"
            loss = figures["leave_one_recording_out"]["log_loss"]
            if fitted.slope <= 0 or judged is None or judged <= 0.5:
                shown = "none" if judged is None else f"{judged:.2f}"
                reason = f"raw value tells in-sync from swapped clips no better than chance ({scope} AUROC {shown})"
            elif loss is not None and loss >= CHANCE_LOG_LOSS:
                reason = (
                    f"its held-out probabilities do no better than 0.5 for every clip (leave-one-recording-out "
                    f"log loss {loss:.3f}, 0.5's {CHANCE_LOG_LOSS:.3f}; AUROC {judged:.2f})"
                )
        if reason is not None:
            fitted = PlattMap(fitted.slope, fitted.intercept, reason)
        maps[name] = fitted
        fits[name] = {
            "matched": sum(e.matched for e in group),
            "swapped": sum(not e.matched for e in group),
            "slope": _r(fitted.slope),
            "intercept": _r(fitted.intercept),
            "chance_raw": None if fitted.chance_raw is None else _r(fitted.chance_raw),
            "informative": fitted.uninformative is None,
            **figures,
        }
    return maps, fits
