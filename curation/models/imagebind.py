"""ImageBind embedder and the aligner built on it (Algorithm 1, lines 10-27, and the task labels).

**The model.** The upstream ImageBind code ships in the PyPI package
``imagebind-unofficial`` (CC-BY-NC-SA-4.0, Meta). Its package ``__init__``
imports ``imagebind.data``, which needs pytorchvideo, torchaudio and
decord, and pytorchvideo no longer imports against current torchvision. So
`imagebind_modules` loads only ``imagebind.models.*``: it registers a bare
package module for ``imagebind`` pointing at the installed folder, so the
``__init__`` never runs. The model code uses two trivial helpers from timm
(``DropPath``, ``trunc_normal_``) and iopath's ``g_pathmgr.open``; where
those packages are missing or broken (timm needs a torchvision built for the
installed torch), equivalent stand-ins are used while the modules load. They
only matter for training (drop path) and for initialisation, never for
inference with loaded weights.

**The preprocessing** is upstream's, re-implemented without torchaudio and
pytorchvideo so that it runs batched on the model's device:

* audio: 2-s clips at 16 kHz → Kaldi-compatible log-mel filterbank (128 bins,
  25 ms Hanning windows every 10 ms, pre-emphasis 0.97, DC removal, exactly
  ``torchaudio.compliance.kaldi.fbank`` with upstream's arguments), padded or
  cut to 204 frames, normalised with mean -4.268 and std 9.138;
* vision: frames scaled (bilinear) so the short side is 224 px, three
  224-px spatial crops along the long side (upstream's video protocol), CLIP
  mean/std; two frames per clip, matching the (2, 14, 14) patch kernel;
* text: upstream's BPE tokenizer (``bpe_simple_vocab_16e6.txt.gz``, shipped
  in the package), 77 tokens.

**Scores** (see docs/models.md): the raw value is a cosine in [-1, 1]; the
normalised score is ``(cos + 1) / 2`` in [0, 1], compared with the configured
threshold (0.5 by default, i.e. cos >= 0).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import importlib.util
import math
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.localization import parabolic_offset
from curation.records import Clip
from curation.roles import Analysis, Score

CHECKPOINT_URL = "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"
HUGE = {
    "vision_embed_dim": 1280,
    "vision_num_blocks": 32,
    "vision_num_heads": 16,
    "text_embed_dim": 1024,
    "text_num_blocks": 24,
    "text_num_heads": 16,
    "out_embed_dim": 1024,
    "audio_drop_path": 0.1,
    "imu_drop_path": 0.7,
}
"""``imagebind_huge``'s constructor arguments (the only released checkpoint)."""
TINY = {
    "out_embed_dim": 32,
    "vision_embed_dim": 32,
    "vision_num_blocks": 1,
    "vision_num_heads": 2,
    "audio_embed_dim": 32,
    "audio_num_blocks": 1,
    "audio_num_heads": 2,
    "text_embed_dim": 32,
    "text_num_blocks": 1,
    "text_num_heads": 2,
    "depth_embed_dim": 16,
    "depth_num_blocks": 1,
    "depth_num_heads": 2,
    "thermal_embed_dim": 16,
    "thermal_num_blocks": 1,
    "thermal_num_heads": 2,
    "imu_embed_dim": 16,
    "imu_num_blocks": 1,
    "imu_num_heads": 2,
}
"""The same architecture, a few thousand times smaller: for tests and CPU smoke runs (random weights only)."""
ARCHITECTURES = {"huge": HUGE, "tiny": TINY}

IMAGE_SIZE = 224
PATCH = 14
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
AUDIO_SECONDS = 2.0
MEL_BINS = 128
MEL_FRAMES = 204
MEL_MEAN, MEL_STD = -4.268, 9.138
LABELS_FILE = Path(__file__).with_name("audioset_labels.csv")
LABEL_TEMPLATE = "a video of {}, with its sound."


# --------------------------------------------------------------------------- loading the upstream code


def _shim_modules() -> dict[str, types.ModuleType]:
    from torch import nn

    class DropPath(nn.Module):
        """Stochastic depth (identity at inference), as in timm."""

        def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
            super().__init__()
            self.drop_prob, self.scale_by_keep = drop_prob, scale_by_keep

        def forward(self, x: Any) -> Any:
            if self.drop_prob == 0.0 or not self.training:
                return x
            keep = 1 - self.drop_prob
            mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
            return x * (mask / keep if self.scale_by_keep else mask)

    def trunc_normal_(tensor: Any, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Any:
        return nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)

    timm = types.ModuleType("timm")
    layers = types.ModuleType("timm.layers")
    layers.DropPath, layers.trunc_normal_ = DropPath, trunc_normal_
    timm.layers = layers
    iopath = types.ModuleType("iopath")
    common = types.ModuleType("iopath.common")
    file_io = types.ModuleType("iopath.common.file_io")
    file_io.g_pathmgr = types.SimpleNamespace(open=open)
    iopath.common, common.file_io = common, file_io
    return {
        "timm": timm,
        "timm.layers": layers,
        "iopath": iopath,
        "iopath.common": common,
        "iopath.common.file_io": file_io,
    }


def _importable(module: str) -> bool:
    before = set(sys.modules)
    try:
        importlib.import_module(module)
        return True
    except Exception:  # noqa: BLE001 - a broken install (e.g. torchvision for another torch) raises anything
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)
        return False


@contextlib.contextmanager
def _stand_ins() -> Iterator[None]:
    """Provide timm/iopath stand-ins only while the ImageBind modules import, and only where the real ones fail."""
    shims = _shim_modules()
    added = []
    for root, names in (("timm.layers", ("timm", "timm.layers")), ("iopath.common.file_io", tuple(shims)[2:])):
        if not _importable(root):
            for name in names:
                sys.modules[name] = shims[name]
                added.append(name)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


_LOAD_LOCK = threading.Lock()


def imagebind_modules() -> tuple[Any, Any]:
    """``(imagebind_model, multimodal_preprocessors)`` from the installed imagebind-unofficial, without its ``__init__``."""
    with _LOAD_LOCK:
        name = "imagebind.models.imagebind_model"
        if name not in sys.modules:
            spec = importlib.util.find_spec("imagebind")
            if spec is None or not spec.submodule_search_locations:
                raise ImportError("ImageBind: install the model code with `pip install --no-deps imagebind-unofficial`")
            if "imagebind" not in sys.modules:
                package = types.ModuleType("imagebind")
                package.__path__ = list(spec.submodule_search_locations)
                package.__spec__ = spec
                package.__file__ = spec.origin
                sys.modules["imagebind"] = package
            with _stand_ins():
                importlib.import_module(name)
        return sys.modules[name], sys.modules["imagebind.models.multimodal_preprocessors"]


def bpe_path() -> Path:
    """Upstream's BPE vocabulary, shipped in the package data of imagebind-unofficial."""
    spec = importlib.util.find_spec("imagebind")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("ImageBind: imagebind-unofficial is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe" / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise FileNotFoundError(f"ImageBind: BPE vocabulary not found at {path}")
    return path


def build_imagebind(
    arch: str | dict[str, Any] = "huge", checkpoint: str | Path | None = None, device: str = "cpu"
) -> Any:
    """An ``ImageBindModel`` in eval mode with only the audio, vision and text branches.

    ``checkpoint``: a local ``.pth`` state dict; ``"download"`` to fetch the
    official one into torch's hub cache (where the network allows);
    ``"random"`` for random weights (tests, benchmarks: never for a release),
    initialised directly on ``device`` (the huge model's 1.2 B parameters
    initialise in seconds on a GPU, in minutes on a CPU); a loaded
    checkpoint is built on the CPU, the caller moves it.
    """
    import torch

    model_module, _ = imagebind_modules()
    kwargs = dict(ARCHITECTURES[arch]) if isinstance(arch, str) else dict(arch)
    if checkpoint in (None, ""):
        raise ValueError("ImageBind: a checkpoint is required (a .pth path, 'download', or 'random' for tests)")
    if checkpoint not in ("random", "download") and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"ImageBind: checkpoint {checkpoint} not found")  # before minutes of model building
    with torch.device(device if checkpoint == "random" else "cpu"):
        model = model_module.ImageBindModel(**kwargs)
    if checkpoint == "download":
        state = torch.hub.load_state_dict_from_url(CHECKPOINT_URL, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    elif checkpoint != "random":
        model.load_state_dict(torch.load(Path(checkpoint), map_location="cpu", weights_only=True))
    for attr in ("modality_preprocessors", "modality_trunks", "modality_heads", "modality_postprocessors"):
        for modality in ("depth", "thermal", "imu"):
            if modality in getattr(model, attr):
                del getattr(model, attr)[modality]
    return model.eval()


# --------------------------------------------------------------------------- preprocessing


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


def audio_to_mel(waveforms: Any) -> Any:
    """Batch ``(B, n)`` of 2-s 16 kHz clips → ImageBind's audio input ``(B, 1, 128, 204)``."""
    import torch

    waveforms = waveforms - waveforms.mean(dim=-1, keepdim=True)
    fbank = kaldi_fbank(waveforms).transpose(1, 2)  # (B, mel, frames)
    pad = MEL_FRAMES - fbank.shape[-1]
    fbank = torch.nn.functional.pad(fbank, (0, pad)) if pad > 0 else fbank[..., :MEL_FRAMES]
    return ((fbank - MEL_MEAN) / MEL_STD).unsqueeze(1)


def crop_offsets(height: int, width: int, crops: int = 3) -> tuple[tuple[int, int], list[int]]:
    """Size after scaling the short side to 224, and the offsets of ``crops`` 224-px crops along the long side."""
    if height <= width:
        size = (IMAGE_SIZE, max(IMAGE_SIZE, round(width * IMAGE_SIZE / height)))
    else:
        size = (max(IMAGE_SIZE, round(height * IMAGE_SIZE / width)), IMAGE_SIZE)
    span = max(size) - IMAGE_SIZE
    offsets = [span // 2] if crops == 1 else [round(i * span / (crops - 1)) for i in range(crops)]
    return size, offsets


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


def load_labels(path: str | Path = LABELS_FILE) -> list[str]:
    """Class names of the label vocabulary, in index order (``index,mid,display_name`` CSV or one name per line)."""
    text = Path(path).read_text(encoding="utf-8")
    rows = list(csv.reader(text.splitlines()))
    if rows and [c.strip() for c in rows[0][:3]] == ["index", "mid", "display_name"]:
        return [row[2] for row in sorted(rows[1:], key=lambda r: int(r[0])) if row]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


# --------------------------------------------------------------------------- embedder


class ImageBindEmbedder:
    """Batched ImageBind forward passes: unit-norm embeddings for audio, vision (with patch tokens) and text."""

    def __init__(
        self,
        model: Any,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        name: str = "imagebind_huge",
        max_batch: int = 64,
    ) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.name = name
        self.max_batch = max_batch
        _, preprocessors = imagebind_modules()
        self.tokenizer = preprocessors.SimpleTokenizer(bpe_path=str(bpe_path()))
        text_scale = model.modality_postprocessors["text"][1]
        self.text_logit_scale = float(
            min(text_scale.log_logit_scale.detach().float().exp().item(), text_scale.max_logit_scale)
        )
        self.flops = 0.0
        """Forward FLOPs spent so far (matmuls only, 2 per multiply-add), for the benchmark's TFLOP/s."""

    @classmethod
    def build(
        cls,
        arch: str | dict[str, Any] = "huge",
        checkpoint: str | Path | None = None,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        max_batch: int = 64,
    ) -> ImageBindEmbedder:
        model = build_imagebind(arch, checkpoint, device=device)
        label = arch if isinstance(arch, str) else "custom"
        name = f"imagebind_{label}" + (" (random init)" if checkpoint == "random" else "")
        return cls(model, device=device, dtype=dtype, name=name, max_batch=max_batch)

    def _chunks(self, x: Any) -> Iterator[Any]:
        for i in range(0, x.shape[0], self.max_batch):
            yield x[i : i + self.max_batch]

    def _trunk(self, modality: str, x: Any) -> tuple[Any, dict[str, Any]]:
        pre = self.model.modality_preprocessors[modality](**{modality: x})
        tokens = self.model.modality_trunks[modality](**pre["trunk"])
        self.flops += _trunk_flops(self.model.modality_trunks[modality], tokens)
        return tokens, pre["head"]

    def _normalise(self, x: Any) -> Any:
        return self.torch.nn.functional.normalize(x.float(), dim=-1)

    def audio(self, waveforms: Any) -> Any:
        """``(B, 32000)`` 2-s clips → ``(B, D)`` unit vectors (float32)."""
        out = []
        with self.torch.inference_mode():
            for chunk in self._chunks(waveforms):
                mel = audio_to_mel(chunk.to(self.device, self.torch.float32)).to(self.dtype)
                tokens, head = self._trunk("audio", mel)
                out.append(self._normalise(self.model.modality_heads["audio"](tokens, **head)))
        return self.torch.cat(out)

    def vision(self, pixels: Any) -> tuple[Any, Any]:
        """``(B, 3, 2, 224, 224)`` → ``(B, D)`` clip embeddings and ``(B, 16, 16, D)`` patch embeddings, unit vectors.

        The patch embeddings go through the same head (LayerNorm, projection)
        as the class token, so they live in the joint space and can be compared
        with the audio embedding: the localization map.
        """
        cls_out, patch_out = [], []
        head = self.model.modality_heads["vision"]
        norm, projection = head[0], head[-1]
        grid = IMAGE_SIZE // PATCH
        with self.torch.inference_mode():
            for chunk in self._chunks(pixels):
                tokens, _ = self._trunk("vision", chunk.to(self.device, self.dtype))
                projected = self._normalise(projection(norm(tokens)))
                cls_out.append(projected[:, 0])
                patches = projected[:, -grid * grid :]
                patch_out.append(patches.reshape(patches.shape[0], grid, grid, -1))
        return self.torch.cat(cls_out), self.torch.cat(patch_out)

    def text(self, texts: Sequence[str]) -> Any:
        """Texts → ``(N, D)`` unit vectors."""
        tokens = self.tokenizer(list(texts))
        tokens = (tokens.unsqueeze(0) if tokens.ndim == 1 else tokens).to(self.device)  # one text comes back 1-D
        out = []
        with self.torch.inference_mode():
            for chunk in self._chunks(tokens):
                trunk, head = self._trunk("text", chunk)
                out.append(self._normalise(self.model.modality_heads["text"](trunk, **head)))
        return self.torch.cat(out)


def _trunk_flops(trunk: Any, tokens: Any) -> float:
    """Matmul FLOPs of one transformer trunk pass: per block 24·L·d² (QKV, out, 4x MLP) + 4·L²·d (attention)."""
    batch, length, dim = tokens.shape
    blocks = len(trunk.blocks)
    return float(batch * blocks * (24 * length * dim * dim + 4 * length * length * dim))


# --------------------------------------------------------------------------- aligner


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


def normalised(cos: float) -> float:
    """The paper's "normalised cosine": ``(cos + 1) / 2``, mapping [-1, 1] onto [0, 1] (see docs/models.md)."""
    return float(min(1.0, max(0.0, (cos + 1.0) / 2.0)))


class ImageBindAligner:
    """Algorithm 1's three filters, the sync offset and the task labels from ImageBind embeddings.

    On one clip (all windows and offsets batched):

    * windows: the clip's 1-s windows ``[i, i+1)``; each is seen as two frames
      (at 1/4 and 3/4 of the window, three spatial crops) and heard as the 2-s
      audio centred on it (ImageBind's audio input length), zero-padded
      beyond the clip;
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

    def __init__(
        self,
        embedder: ImageBindEmbedder,
        labels: Sequence[str] | None = None,
        settings: AlignerSettings | None = None,
    ) -> None:
        self.embedder = embedder
        self.settings = settings or AlignerSettings()
        self.labels = list(labels) if labels is not None else load_labels()
        self.name = "imagebind-alignment"
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

    def _audio_segments(self, clip: Clip, centres: np.ndarray) -> Any:
        """2-s audio segments centred at ``centres`` (seconds, any shape) → ``(N, 32000)``, zero-padded."""
        torch = self.embedder.torch
        length = int(AUDIO_SECONDS * AUDIO_SAMPLE_RATE)
        audio = torch.as_tensor(np.asarray(clip.audio, np.float32))
        margin = length + int(2 * self.settings.max_offset * AUDIO_SAMPLE_RATE) + AUDIO_SAMPLE_RATE
        padded = torch.nn.functional.pad(audio, (margin, margin))
        starts = np.round((np.ravel(centres) - AUDIO_SECONDS / 2) * AUDIO_SAMPLE_RATE).astype(np.int64) + margin
        starts = np.clip(starts, 0, len(padded) - length)
        index = torch.as_tensor(starts).unsqueeze(1) + torch.arange(length).unsqueeze(0)
        return padded[index]

    def _offsets(self) -> np.ndarray:
        s = self.settings
        steps = int(round(s.max_offset / s.offset_step)) if s.offset_step > 0 else 0
        return np.arange(-steps, steps + 1) * s.offset_step

    # ----------------------------------------------------------------- analysis

    def analyse(self, clip: Clip, caption: str | None) -> Analysis:
        torch = self.embedder.torch
        s = self.settings
        duration = len(clip.audio) / AUDIO_SAMPLE_RATE
        starts = self._windows(clip)
        whole = not starts  # shorter than one window: the clip is its own single window
        if whole:
            starts = [0.0]
        centres = np.asarray(starts) + (duration if whole else s.window) / 2
        search = duration >= s.min_sync_seconds and s.max_offset > 0
        offsets = self._offsets() if search else np.zeros(1)
        zero = int(np.argmin(np.abs(offsets)))

        pairs = self._frame_pairs(clip, starts, duration if whole else s.window)
        pixels = frames_to_vision(pairs, device=self.embedder.device, crops=s.crops)
        visual_crops, patches = self.embedder.vision(pixels)  # (W*K, D), (W*K, g, g, D)
        crops = pixels.shape[0] // len(starts)
        visual = self.embedder._normalise(visual_crops.reshape(len(starts), crops, -1).mean(dim=1))  # (W, D)

        segments = self._audio_segments(clip, centres[None, :] + offsets[:, None])  # (O*W, n)
        audio = self.embedder.audio(segments).reshape(len(offsets), len(starts), -1)  # (O, W, D)

        per_window = (audio * visual.unsqueeze(0)).sum(-1).cpu().numpy()  # (O, W) cosines
        # A window counts at an offset only if the audio it is matched with (its central window-length part)
        # lies inside the clip: zero padding would otherwise bias the search away from large offsets.
        shifted = centres[None, :] + offsets[:, None]
        half = (duration if whole else s.window) / 2
        valid = (shifted - half >= -1e-6) & (shifted + half <= duration + 1e-6)
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
        if caption and caption.strip():
            text = self.embedder.text([caption])[0]
            language_cos = float((text * av).sum())
            language = Score(normalised(language_cos), language_cos)
            rows.append(text)
            names.append("text")
        else:
            language = Score.missing("no caption to compare")

        if whole:
            temporal, temporal_reason = None, f"clip shorter than one {s.window:g}-s window"
        else:
            temporal, temporal_reason = [normalised(c) for c in windows0], None

        if search:
            offset, confidence = _best_offset(offsets, curve, s.max_offset)
            sync_reason = None
        else:
            offset, confidence = None, None
            sync_reason = f"clip shorter than {s.min_sync_seconds:g} s: no offset search"

        heatmap = self._heatmap(patches, audio0, clip.frames.shape[1:3], len(starts), crops)
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
