"""Encoders: a clip's arrays → the bytes of its tar members.

Every encoder is deterministic (fixed encoder threads, bit-exact muxing, no
timestamps), so the same clip always gives the same bytes and a rerun
reproduces the shards exactly.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import soundfile as sf
from PIL import Image

from acav1m_hf.schema import AUDIO_SAMPLE_RATE

VIDEO_CRF = "28"
X264_PARAMS = "mbtree=0"
"""x264's macroblock-tree rate control gave different bytes in different processes for the same frames."""
AUDIO_BITRATE = 64_000


def encode_mp4(frames: np.ndarray, fps: float, audio: np.ndarray) -> bytes:
    """H.264 (yuv420p) + AAC (16 kHz mono) in MP4, both streams starting at zero."""
    buffer = io.BytesIO()
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(buffer, "w", format="mp4", options={"fflags": "+bitexact"}) as out:
        vstream = out.add_stream(
            "libx264",
            rate=rate,
            options={"crf": VIDEO_CRF, "preset": "veryfast", "threads": "1", "x264-params": X264_PARAMS},
        )
        vstream.width, vstream.height = frames.shape[2], frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        vstream.codec_context.flags |= av.codec.context.Flags.bitexact
        astream = out.add_stream("aac", rate=AUDIO_SAMPLE_RATE, layout="mono")
        astream.bit_rate = AUDIO_BITRATE
        astream.codec_context.flags |= av.codec.context.Flags.bitexact
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(vstream.encode(frame))
        out.mux(vstream.encode(None))
        step = 1024
        for start in range(0, len(audio), step):
            chunk = np.ascontiguousarray(audio[None, start : start + step], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = AUDIO_SAMPLE_RATE
            frame.pts = start
            frame.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
            out.mux(astream.encode(frame))
        out.mux(astream.encode(None))
    return buffer.getvalue()


def encode_flac(audio: np.ndarray) -> bytes:
    """16-bit FLAC, 16 kHz mono."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), AUDIO_SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def encode_jpg(rgb: np.ndarray) -> bytes:
    """The keyframe: a JPEG at quality 90, for previews and image-only tasks without decoding the video."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def encode_png_mask(mask: np.ndarray) -> bytes:
    """8-bit grayscale PNG; 255 marks the sounding region."""
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8), mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def encode_npy(array: np.ndarray) -> bytes:
    """float32 ``.npy`` without pickle, so that readers can load it with ``allow_pickle=False``."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()
