"""The ImageBind model: loading the upstream code and batched forward passes (`ImageBindEmbedder`).

Two neighbours do the rest: `curation.models.imagebind_preprocess` turns
waveforms and frames into ImageBind's inputs, and
`curation.models.imagebind_aligner` turns the embeddings into Algorithm 1's
scores and the task labels (lines 10-27).

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

**Text** goes through upstream's BPE tokenizer (``bpe_simple_vocab_16e6.txt.gz``,
shipped in the package), 77 tokens.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from curation.models.imagebind_preprocess import IMAGE_SIZE, PATCH, audio_to_mel

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
        compile: bool = False,
    ) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.name = name
        self.max_batch = max_batch
        self.trunks = {
            modality: torch.compile(trunk, dynamic=True) if compile else trunk
            for modality, trunk in self.model.modality_trunks.items()
        }
        """The trunks as called: ``torch.compile``d when ``compile`` (a setting, ``embedder_compile``; off by
        default: the first batches pay for compiling, and the gain on the huge model is not measured yet)."""
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
        compile: bool = False,
    ) -> ImageBindEmbedder:
        model = build_imagebind(arch, checkpoint, device=device)
        label = arch if isinstance(arch, str) else "custom"
        name = f"imagebind_{label}" + (" (random init)" if checkpoint == "random" else "")
        return cls(model, device=device, dtype=dtype, name=name, max_batch=max_batch, compile=compile)

    def _chunks(self, x: Any) -> Iterator[Any]:
        for i in range(0, x.shape[0], self.max_batch):
            yield x[i : i + self.max_batch]

    def _trunk(self, modality: str, x: Any) -> tuple[Any, dict[str, Any]]:
        pre = self.model.modality_preprocessors[modality](**{modality: x})
        tokens = self.trunks[modality](**pre["trunk"])
        self.flops += _trunk_flops(self.model.modality_trunks[modality], tokens)
        return tokens, pre["head"]

    def _normalise(self, x: Any) -> Any:
        return self.torch.nn.functional.normalize(x.float(), dim=-1)

    def audio(self, waveforms: Any, lengths: Any = None) -> Any:
        """``(B, 32000)`` 2-s clips (``lengths``: leading samples that are audio, all by default) → ``(B, D)`` unit vectors."""
        lengths = self.torch.full((waveforms.shape[0],), waveforms.shape[1]) if lengths is None else lengths
        mels = [
            audio_to_mel(chunk.to(self.device, self.torch.float32), chunk_lengths)
            for chunk, chunk_lengths in zip(self._chunks(waveforms), self._chunks(lengths), strict=True)
        ]
        return self.audio_from_mel(self.torch.cat(mels))

    def audio_from_mel(self, mel: Any) -> Any:
        """ImageBind's audio input ``(B, 1, 128, 204)`` → ``(B, D)`` unit vectors (float32)."""
        out = []
        with self.torch.inference_mode():
            for chunk in self._chunks(mel):
                tokens, head = self._trunk("audio", chunk.to(self.device, self.dtype))
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
