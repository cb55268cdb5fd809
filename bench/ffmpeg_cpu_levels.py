"""Which of the pipeline's FFmpeg steps give other bits on a CPU with other SIMD, measured on one machine.

README.md promises byte-identical shards across machines, and machines differ in
the SIMD their CPU offers. FFmpeg picks its kernels from the CPU's features at
run time, and `av_force_cpu_flags` (libavutil's own switch, what ``ffmpeg
-cpuflags`` sets) makes it pick those of an older CPU. This script loads PyAV's
bundled libavutil with ctypes, forces each level in turn, runs each step on the
same input and prints a digest per step and level (a markdown table):

    python bench/ffmpeg_cpu_levels.py

The steps: decoding the sample clips as curate does (`curation.decode`: H.264
and other decoders, swscale's conversion to RGB, swresample to 16 kHz mono),
swscale's RGB to YUV 4:2:0 and libx264 (with the benchmark variants' options, `curation.variants.X264_OPTIONS`;
it picks its own kernels: levels are set through its ``asm`` option), FFmpeg's AAC encoder
and swresample from 16 to 48 kHz (the benchmark's container shifts). x86-64 only,
and only the levels this CPU has: an older level is a subset of a newer one's
kernels, but forcing kernels the CPU lacks ends the process with SIGILL.
BENCHMARKS.md ("Which steps depend on the CPU") gives a run's table.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.inputs import read_inputs
from curation.variants import CONTAINER_AUDIO_RATE, X264_OPTIONS, _resampled

REPO = Path(__file__).resolve().parents[1]
SAMPLE_MANIFEST = REPO / "acav1m_hf" / "sample_data" / "manifest.csv"
_BASE = 0x1 | 0x2 | 0x8 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x1000  # MMX .. SSE4.2, CMOV (libavutil/cpu.h)
_AVX2 = _BASE | 0x4000 | 0x8000 | 0x10000 | 0x20000 | 0x40000  # + AVX, AVX2, FMA3, BMI1, BMI2
LEVELS = {"SSE4.2": _BASE, "AVX": _BASE | 0x4000, "AVX2 + FMA3": _AVX2, "AVX-512": _AVX2 | 0x100000 | 0x200000}
"""FFmpeg's AV_CPU_FLAG_* sets of four CPU generations."""
X264_ASM = {"SSE4.2": 0x1EF, "AVX": 0x3EF, "AVX2 + FMA3": 0xF3FF, "AVX-512": 0x1F3FF}
"""The same levels as x264's X264_CPU_* masks (x264.h), without AMD's XOP and FMA4, and without LZCNT (bit 4)
below AVX2: x264 does not check the mask against the CPU, and LZCNT came with AVX2's generation."""
DETECTED = "as detected"
"""The column of FFmpeg's and x264's own choice on this CPU, unforced: what a run here uses."""


def _libavutil() -> ctypes.CDLL:
    libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    return ctypes.CDLL(str(next(libs.glob("libavutil-*.so*"))))


def _digest(data: bytes | np.ndarray) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()).hexdigest()[:10]


def _decoded(kind: str) -> Callable[[str], str]:
    def step(level: str) -> str:
        items, _ = read_inputs([str(SAMPLE_MANIFEST)])
        clips = [clip for item in items for clip in decode_clips(item, CurationConfig())]
        return _digest(b"".join(_digest(getattr(clip, kind)).encode() for clip in clips))

    return step


def _audio_frames(level: str) -> str:
    """The sample clips' audio as their decoders give it, before any resampling."""
    digests = []
    for path in sorted(SAMPLE_MANIFEST.parent.iterdir()):
        try:
            container = av.open(str(path))
        except av.error.InvalidDataError:
            continue
        with container:
            for stream in container.streams.audio[:1]:
                digests += [_digest(frame.to_ndarray()) for frame in container.decode(stream)]
    return _digest("".join(digests).encode())


def _frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (12, 240, 320, 3), dtype=np.uint8)


def _to_yuv(level: str) -> str:
    frames = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in _frames()]
    return _digest(b"".join(f.to_ndarray().tobytes() for f in frames))


def _x264(level: str) -> str:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        asm = f":asm={X264_ASM[level]}" if level in X264_ASM else ""
        options = {**X264_OPTIONS, "x264-params": X264_OPTIONS["x264-params"] + asm}
        video = out.add_stream("libx264", rate=25, options=options)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        for k, image in enumerate(_frames()):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = k
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return _digest(buffer.getvalue())


def _noise(rate: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(1).standard_normal(3 * rate)).astype(np.float32)


def _aac(level: str) -> str:
    samples = _noise(48000)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, i : i + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return _digest(buffer.getvalue())


STEPS = {
    "decode: frames (decoders, swscale to RGB)": _decoded("frames"),
    "decode: audio frames (decoders, before resampling)": _audio_frames,
    "decode: audio (swresample to 16 kHz mono)": _decoded("audio"),
    "swscale RGB to YUV 4:2:0": _to_yuv,
    "libx264 (threads=1)": _x264,
    "AAC encoder": _aac,
    f"swresample 16 to {CONTAINER_AUDIO_RATE // 1000} kHz": lambda level: _digest(
        _resampled(_noise(16000), CONTAINER_AUDIO_RATE)
    ),
}


def levels_here() -> list[str]:
    """The levels of `LEVELS` whose every flag this CPU has, as FFmpeg itself detects them."""
    libavutil = _libavutil()
    libavutil.av_force_cpu_flags(-1)
    detected = libavutil.av_get_cpu_flags()
    return [level for level, flags in LEVELS.items() if flags & detected == flags]


def measure(steps: list[str] | None = None) -> dict[str, dict[str, str]]:
    """Step -> level -> digest of its output, for ``steps`` (default: all) at `levels_here` and `DETECTED`; FFmpeg's
    own choice is restored after."""
    libavutil = _libavutil()
    table: dict[str, dict[str, str]] = {step: {} for step in steps or STEPS}
    try:
        for level in [*levels_here(), DETECTED]:
            libavutil.av_force_cpu_flags(LEVELS.get(level, -1))
            for step, digests in table.items():
                digests[level] = STEPS[step](level)
    finally:
        libavutil.av_force_cpu_flags(-1)
    return table


def main() -> None:
    table = measure()
    print(f"PyAV {av.__version__}, libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}\n")
    levels = list(next(iter(table.values())))
    print("| step | " + " | ".join(levels) + " | same at every level |")
    print("|---|" + "---|" * (len(levels) + 1))
    for step, digests in table.items():
        same = "yes" if len(set(digests.values())) == 1 else "**no**"
        print(f"| {step} | " + " | ".join(digests.values()) + f" | {same} |")


if __name__ == "__main__":
    main()
