"""ImageBind's input preprocessing, re-implemented without torchaudio and pytorchvideo.

The preprocessing is upstream's, re-implemented so that it runs batched on
the model's device:

* audio: 2-s clips at 16 kHz → Kaldi-compatible log-mel filterbank (128 bins,
  25 ms Hanning windows every 10 ms, pre-emphasis 0.97, DC removal,
  ``torchaudio.compliance.kaldi.fbank`` with upstream's arguments), the
  fbank padded with 0 or cut to 204 frames, normalised with mean -4.268 and
  std 9.138;
* vision: frames scaled (bilinear) so the short side is 224 px, three
  224-px spatial crops along the long side (upstream's video protocol), CLIP
  mean/std; two frames per clip, matching the (2, 14, 14) patch kernel.

Text needs no preprocessing here: `curation.models.imagebind.ImageBindEmbedder`
tokenizes it with upstream's BPE tokenizer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE

IMAGE_SIZE = 224
PATCH = 14
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
AUDIO_SECONDS = 2.0
MEL_BINS = 128
MEL_FRAMES = 204
MEL_MEAN, MEL_STD = -4.268, 9.138


def kaldi_fbank(waveforms: Any, num_mel_bins: int = MEL_BINS, sample_rate: int = AUDIO_SAMPLE_RATE) -> Any:
    """Log-mel filterbanks of a batch ``(B, n)`` → ``(B, frames, num_mel_bins)``.

    A batched port of ``torchaudio.compliance.kaldi.fbank`` with the arguments
    ImageBind uses (``htk_compat=True, use_energy=False, window_type="hanning",
    dither=0, frame_length=25, frame_shift=10``, the rest at their defaults):
    snip edges, per-frame DC removal, pre-emphasis 0.97, power spectrum of a
    512-point FFT, HTK mel triangles from 20 Hz to Nyquist, log floored at
    float32 epsilon.
    """
    import torch

    window = int(sample_rate * 0.025)
    shift = int(sample_rate * 0.010)
    nfft = 1 << (window - 1).bit_length()
    x = waveforms.float()
    if x.shape[-1] < window:
        raise ValueError(f"fbank: need at least {window} samples, got {x.shape[-1]}")
    frames = x.unfold(-1, window, shift)  # (B, m, window)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = frames - 0.97 * previous
    frames = frames * torch.hann_window(window, periodic=False, device=x.device, dtype=x.dtype)
    spectrum = torch.fft.rfft(frames, n=nfft).abs().pow(2.0)  # (B, m, nfft/2 + 1)
    banks = _mel_banks(num_mel_bins, nfft, sample_rate).to(device=x.device, dtype=x.dtype)
    energies = spectrum @ torch.nn.functional.pad(banks, (0, 1)).T
    return torch.clamp_min(energies, torch.finfo(torch.float32).eps).log()


def _mel_banks(num_bins: int, nfft: int, sample_rate: int, low: float = 20.0) -> Any:
    import torch

    def mel(f: Any) -> Any:
        return (
            1127.0 * torch.log(1.0 + f / 700.0) if isinstance(f, torch.Tensor) else 1127.0 * math.log(1.0 + f / 700.0)
        )

    high = 0.5 * sample_rate
    mel_low, mel_high = mel(low), mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    index = torch.arange(num_bins, dtype=torch.float64).unsqueeze(1)
    left, center, right = mel_low + index * delta, mel_low + (index + 1) * delta, mel_low + (index + 2) * delta
    bins = mel((sample_rate / nfft) * torch.arange(nfft // 2, dtype=torch.float64)).unsqueeze(0)
    up = (bins - left) / (center - left)
    down = (right - bins) / (right - center)
    return torch.clamp_min(torch.minimum(up, down), 0.0).float()


def audio_to_mel(waveforms: Any, lengths: Any = None) -> Any:
    """Batch ``(B, n)`` of 16 kHz clips → ImageBind's audio input ``(B, 1, 128, 204)``, as upstream makes it.

    ``lengths``: how many leading samples of each row are audio (all ``n`` by
    default). Upstream (``imagebind.data.waveform2melspec``) computes the
    fbank of the audio it has and pads the *fbank* with 0 up to 204 frames
    (normalised +0.467); it never reads samples that are not in the file. So
    here the frames that would reach past a row's length are set to 0 the
    same way, instead of being computed from zero samples, which the log
    would turn into log(eps) (normalised -1.28).
    """
    import torch

    n = waveforms.shape[-1]
    lengths = torch.full((waveforms.shape[0],), n) if lengths is None else torch.as_tensor(lengths).clamp(0, n)
    lengths = lengths.to(waveforms.device)
    inside = torch.arange(n, device=waveforms.device) < lengths[:, None]
    mean = (waveforms * inside).sum(dim=-1, keepdim=True) / lengths.clamp_min(1)[:, None]
    fbank = kaldi_fbank((waveforms - mean) * inside).transpose(1, 2)  # (B, mel, frames)
    window, shift = int(AUDIO_SAMPLE_RATE * 0.025), int(AUDIO_SAMPLE_RATE * 0.010)
    frames = torch.where(lengths >= window, 1 + (lengths - window) // shift, 0)  # Kaldi's snip-edges count
    fbank = fbank * (torch.arange(fbank.shape[-1], device=fbank.device) < frames[:, None])[:, None, :]
    pad = MEL_FRAMES - fbank.shape[-1]
    fbank = torch.nn.functional.pad(fbank, (0, pad)) if pad > 0 else fbank[..., :MEL_FRAMES]
    return ((fbank - MEL_MEAN) / MEL_STD).unsqueeze(1)


def crop_offsets(height: int, width: int, crops: int = 3) -> tuple[tuple[int, int], list[int]]:
    """Size after scaling the short side to 224, and the offsets of ``crops`` (3 or 1) 224-px crops along the long side.

    Upstream's rounding, exactly: the long side is truncated as pytorchvideo's
    ``short_side_scale`` does (``floor(long / short * 224)``), and the crops
    are those of ``imagebind.data.uniform_crop``: start, ``ceil(span / 2)``
    and end (1 crop: the middle one).
    """
    if crops not in (1, 3):
        raise ValueError(f"ImageBind vision: crops must be 3 or 1 (upstream's SpatialCrop), got {crops}")
    if width < height:
        size = (int(math.floor((float(height) / width) * IMAGE_SIZE)), IMAGE_SIZE)
    else:
        size = (IMAGE_SIZE, int(math.floor((float(width) / height) * IMAGE_SIZE)))
    span = max(size) - IMAGE_SIZE
    middle = int(math.ceil(span / 2))
    return size, [middle] if crops == 1 else [0, middle, span]


def frames_to_vision(frames: np.ndarray, device: Any = "cpu", crops: int = 3) -> Any:
    """uint8 ``(N, 2, H, W, 3)`` frame pairs → ImageBind's vision input ``(N * crops, 3, 2, 224, 224)``.

    Crop-major within each pair: rows ``n * crops + k`` hold crop ``k`` of pair ``n``.
    """
    import torch

    n, t, height, width, _ = frames.shape
    x = torch.as_tensor(frames, device=device).permute(0, 1, 4, 2, 3).reshape(n * t, 3, height, width).float() / 255
    (h, w), offsets = crop_offsets(height, width, crops)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)
    x = ((x - mean) / std).reshape(n, t, 3, h, w)
    pieces = [
        x[..., o : o + IMAGE_SIZE, :] if h > w else x[..., :, o : o + IMAGE_SIZE] for o in offsets
    ]  # each (n, t, 3, 224, 224)
    return torch.stack(pieces, dim=1).reshape(n * len(offsets), t, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(1, 2)
