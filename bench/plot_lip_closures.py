"""Draw a talking face's lip gap against its audio, to check by eye whether a recording is in sync.

A bilabial stop (/p/, /b/) closes the lips, silences the voice, and releases both at once: the lips part at the
instant of the acoustic burst, within a few milliseconds. So where the lips part after a closure in the picture
and where the burst follows a silence in the sound tell the recording's true offset to about a frame, with no
model of how loudness follows the mouth (which is what `curation.lipsync` assumes, and what this checks).

The figure has three rows on one time axis: FaceMesh's inner-lip gap over the mouth's width on each decoded
frame's own time, the audio's level in 5-ms windows, and its spectrogram (a burst is a thin vertical line):

    python bench/plot_lip_closures.py CLIP START END -o figure.png

BENCHMARKS.md ("Which recordings are in sync") gives the readings taken this way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file backend)

RATE = 16000
INNER_LIPS, MOUTH_CORNERS = (13, 14), (78, 308)
"""FaceMesh's inner-lip midpoints and the mouth's inner corners."""


def lip_gaps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frame times in seconds, inner-lip gap over mouth width; NaN where FaceMesh finds no face)."""
    from mediapipe.python.solutions import face_mesh

    times, gaps = [], []
    with av.open(str(path)) as container, face_mesh.FaceMesh(max_num_faces=1, refine_landmarks=True) as mesh:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            found = mesh.process(image).multi_face_landmarks
            times.append(float(frame.time))
            if not found:
                gaps.append(np.nan)
                continue
            size = np.array(image.shape[1::-1], dtype=np.float64)
            point = [np.array([m.x, m.y]) * size for m in found[0].landmark]
            gap = np.linalg.norm(point[INNER_LIPS[0]] - point[INNER_LIPS[1]])
            gaps.append(gap / np.linalg.norm(point[MOUTH_CORNERS[0]] - point[MOUTH_CORNERS[1]]))
    return np.array(times), np.array(gaps)


def audio(path: Path) -> tuple[float, np.ndarray]:
    """(the first audio frame's time in seconds, mono float32 samples at `RATE`)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
        chunks = [out.to_ndarray().reshape(-1) for frame in frames for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return float(frames[0].time), np.concatenate(chunks)


def plot(path: Path, start: float, end: float, out: Path) -> None:
    times, gaps = lip_gaps(path)
    t0, samples = audio(path)
    hop, width = RATE // 1000, RATE // 200  # 1-ms steps, 5-ms windows
    starts = np.arange(0, len(samples) - width, hop)
    level = 10 * np.log10(np.array([np.sum(samples[s : s + width] ** 2) for s in starts]) + 1e-10)
    figure, (lips, loud, spectrum) = plt.subplots(3, 1, figsize=(14, 8), sharex=True)
    lips.plot(times, gaps, ".-")
    lips.set_ylabel("inner-lip gap / mouth width")
    centres = t0 + (starts + width / 2) / RATE
    shown = level[(centres >= start) & (centres <= end)]
    loud.plot(centres, level)
    loud.set_ylim(shown.min() - 3, shown.max() + 3)
    loud.set_ylabel("level, dB (5-ms windows)")
    first, last = int(max(start - t0, 0) * RATE), int(max(end - t0, 0) * RATE)
    spectrum.specgram(samples[first:last], NFFT=256, Fs=RATE, noverlap=224, xextent=(t0 + first / RATE, end))
    spectrum.set_ylabel("Hz")
    spectrum.set_xlabel(f"seconds in {path.name}")
    for axis in (lips, loud, spectrum):
        axis.set_xticks(np.arange(start, end, 0.02), minor=True)
        axis.grid(True, which="both", alpha=0.4)
    spectrum.set_xlim(start, end)
    figure.tight_layout()
    figure.savefig(out, dpi=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("start", type=float, help="seconds")
    parser.add_argument("end", type=float, help="seconds")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the figure (.png)")
    args = parser.parse_args()
    if not args.end > args.start:
        parser.error(f"end ({args.end}) must be after start ({args.start})")
    plot(args.clip, args.start, args.end, args.out)


if __name__ == "__main__":
    main()
