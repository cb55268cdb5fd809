"""Captioner: Video-LLaVA through transformers (Algorithm 1, line 6).

Each clip is shown to the model as ``num_frames`` frames sampled uniformly
over it (8, as Video-LLaVA was trained), with a configurable prompt; the
answer is split into sentences: the "sentence-level descriptions" that the
condenser turns into one caption. Clips are captioned in batches of
``batch_size`` (left padding, greedy decoding, so a rerun gives the same
words; the attention is transformers' default, SDPA where it applies), and
each batch's output tokens and seconds are recorded (`GenerationBatch`).

The inputs are built here from the model folder's tokenizer and
``VideoLlavaImageProcessor`` rather than through ``VideoLlavaProcessor``:
in current transformers the processor requires the torchvision-based video
processor, and PyPI has no torchvision wheel that loads against a CPU-only
torch. The image processor applies the same CLIP preprocessing to each
frame (short side 224, centre crop 224, CLIP mean/std) and the ``<video>``
placeholder is expanded exactly as ``VideoLlavaProcessor.replace_video_token``
does: ``frames * ((224 / patch)^2 + 1)`` tokens (the class token is kept for
video). ``tests/test_models_videollava.py`` checks both against transformers'
own code (``CLIPImageProcessorPil`` and ``VideoLlavaProcessor.replace_video_token``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation.models.text import split_sentences
from curation.records import Clip

DEFAULT_MODEL = "LanguageBind/Video-LLaVA-7B-hf"
DEFAULT_PROMPT = "Describe this video in a few short sentences: what is seen, what happens, and what is probably heard."
PROMPT_TEMPLATE = "USER: {video}\n{prompt} ASSISTANT:"


def sample_frame_indices(n_frames: int, count: int) -> np.ndarray:
    """``count`` indices spread uniformly over ``n_frames`` (repeats when the clip has fewer frames)."""
    if n_frames < 1:
        raise ValueError("the clip has no frames")
    return np.linspace(0, n_frames - 1, count).round().astype(np.int64)


@dataclass(frozen=True)
class GenerationBatch:
    """One ``generate`` call: the captioner's throughput is measured in output tokens per second, per batch."""

    clips: int
    output_tokens: int
    """Generated tokens that are not padding (a clip that ended early pads the rest of its row)."""
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else 0.0


class VideoLlavaCaptioner:
    """Sentence-level descriptions of clips from Video-LLaVA (any ``VideoLlavaForConditionalGeneration`` folder/id)."""

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        dtype: str | None = None,
        num_frames: int = 8,
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = 96,
        batch_size: int = 8,
        local_files_only: bool = False,
        generation: dict[str, Any] | None = None,
    ) -> None:
        self.model_ref = str(model)
        self.name = Path(self.model_ref).name if Path(self.model_ref).is_dir() else self.model_ref
        self.device = device
        self.dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
        self.num_frames = num_frames
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.batch_size = max(1, batch_size)
        self.local_files_only = local_files_only
        self.generation = dict(generation or {})
        """Extra ``generate`` arguments (e.g. ``min_new_tokens`` to fix the output length in a benchmark)."""
        self._parts: tuple[Any, Any, Any] | None = None
        self._lock = threading.Lock()
        self.generated_tokens = 0
        """Tokens generated so far (the captioner's throughput is measured in output tokens per second)."""
        self.batches: list[GenerationBatch] = []
        """Every batch generated so far, with its output tokens and wall time (``generate`` and the copy back)."""

    @classmethod
    def from_parts(cls, model: Any, tokenizer: Any, image_processor: Any, **kwargs: Any) -> VideoLlavaCaptioner:
        """A captioner around already-built parts (tests, benchmarks with randomly initialised models)."""
        captioner = cls(kwargs.pop("name", "video-llava"), **kwargs)
        captioner.name = getattr(model.config, "_name_or_path", None) or "video-llava"
        model.to(captioner.device)
        captioner._parts = (model.eval(), _left_padding(tokenizer), image_processor)
        return captioner

    def parts(self) -> tuple[Any, Any, Any]:
        """``(model, tokenizer, image_processor)``, loaded on first use."""
        with self._lock:
            if self._parts is None:
                import torch
                from transformers import AutoTokenizer, VideoLlavaForConditionalGeneration, VideoLlavaImageProcessor

                common = {"local_files_only": self.local_files_only}
                model = VideoLlavaForConditionalGeneration.from_pretrained(
                    self.model_ref, dtype=getattr(torch, self.dtype), **common
                )
                tokenizer = AutoTokenizer.from_pretrained(self.model_ref, **common)
                image_processor = VideoLlavaImageProcessor.from_pretrained(self.model_ref, **common)
                self._parts = (model.to(self.device).eval(), _left_padding(tokenizer), image_processor)
            return self._parts

    def inputs(self, clips: Sequence[Clip]) -> dict[str, Any]:
        """Model inputs for a batch: left-padded prompts with expanded ``<video>`` tokens and ``pixel_values_videos``."""
        model, tokenizer, image_processor = self.parts()
        frames = [clip.frames[sample_frame_indices(len(clip.frames), self.num_frames)] for clip in clips]
        pixels = _pixel_values(image_processor, [f for video in frames for f in video])
        pixels = pixels.reshape(len(clips), self.num_frames, *pixels.shape[1:])
        height, width = pixels.shape[-2:]
        patch = model.config.vision_config.patch_size
        per_frame = (height // patch) * (width // patch) + 1  # the class token is kept for video
        video_token = getattr(tokenizer, "video_token", None) or "<video>"
        text = PROMPT_TEMPLATE.format(video=video_token * (per_frame * self.num_frames), prompt=self.prompt)
        encoded = tokenizer([text] * len(clips), return_tensors="pt", padding=True)
        dtype = next(model.parameters()).dtype
        return {**encoded, "pixel_values_videos": pixels.to(dtype)}

    def describe(self, clips: list[Clip]) -> list[list[str]]:
        out: list[list[str]] = []
        for start in range(0, len(clips), self.batch_size):
            out.extend(self._describe_batch(clips[start : start + self.batch_size]))
        return out

    def _describe_batch(self, clips: list[Clip]) -> list[list[str]]:
        import torch

        model, tokenizer, _ = self.parts()
        inputs = {k: v.to(model.device) for k, v in self.inputs(clips).items()}
        start = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                **self.generation,
            )
        new = output[:, inputs["input_ids"].shape[1] :].cpu()  # the copy waits for the device: the batch's end
        tokens = int((new != tokenizer.pad_token_id).sum())
        self.batches.append(GenerationBatch(len(clips), tokens, time.perf_counter() - start))
        self.generated_tokens += tokens
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        return [split_sentences(text) for text in texts]


def _left_padding(tokenizer: Any) -> Any:
    """Decoder-only batched generation needs left padding and a pad token."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def _pixel_values(image_processor: Any, images: list[np.ndarray]) -> Any:
    """CLIP-preprocessed frames ``(N, 3, H, W)`` (the output key changed name across transformers versions)."""
    try:
        out = image_processor(images=images, return_tensors="pt", return_legacy_image_output=False)
    except TypeError:
        out = image_processor(images=images, return_tensors="pt")
    for key in ("pixel_values", "pixel_values_images"):
        if key in out:
            return out[key]
    raise KeyError(f"the image processor returned none of pixel_values/pixel_values_images: {list(out)}")


# --------------------------------------------------------------------------- random models (tests, benchmarks)

_CORPUS = (
    DEFAULT_PROMPT,
    "USER: ASSISTANT: A man speaks at a podium. A dog barks in a park. Water flows over rocks.",
    "A woman plays the piano. A car engine revs. People clap and cheer. Birds sing in the trees.",
)


def tiny_tokenizer(vocab_size: int = 400) -> Any:
    """A byte-level BPE tokenizer trained in code (no download), with Video-LLaVA's special tokens.

    Ids: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ``<pad>`` 3, ``<image>`` 4, ``<video>`` 5.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>", "<video>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(list(_CORPUS) * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>", "<video>"]})
    return _left_padding(tokenizer)


def random_videollava(size: str = "tiny", *, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any, Any]:
    """``(model, tokenizer, image_processor)`` with random weights: ``tiny`` (tests) or ``7b`` (Video-LLaVA-7B's shapes).

    Never for a release: the descriptions are noise. The 7B model is built
    directly on ``device`` in ``dtype`` (no 28 GB float32 copy on the host).
    """
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        VideoLlavaConfig,
        VideoLlavaForConditionalGeneration,
        VideoLlavaImageProcessor,
    )

    tokenizer = tiny_tokenizer()
    if size == "tiny":
        image = 28
        vision = CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=image,
            patch_size=14, projection_dim=32,
        )  # fmt: skip
        text = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
        )  # fmt: skip
    elif size == "7b":
        image = 224
        vision = CLIPVisionConfig(
            hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=image,
            patch_size=14, projection_dim=768,
        )  # fmt: skip
        text = LlamaConfig(
            vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
            num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
        )  # fmt: skip
    else:
        raise ValueError(f"random_videollava: unknown size {size!r} (tiny, 7b)")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(text, key, getattr(tokenizer, key))
    per_frame = (image // 14) ** 2 + 1
    config = VideoLlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        image_seq_length=per_frame - 1,
        video_seq_length=per_frame * 8,
    )
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.device(device):
            model = VideoLlavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = VideoLlavaImageProcessor(size={"shortest_edge": image}, crop_size={"height": image, "width": image})
    return model.eval(), tokenizer, processor


def save_random_videollava(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random Video-LLaVA folder that ``VideoLlavaCaptioner(folder)`` loads like a real one."""
    import torch

    torch.manual_seed(seed)
    model, tokenizer, processor = random_videollava(size)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
