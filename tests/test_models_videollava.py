"""Video-LLaVA captioner with a tiny randomly initialised model built from a ``VideoLlavaConfig`` (nothing downloaded).

The model folder is written with ``save_pretrained`` and loaded back through
the captioner's real loading code (``from_pretrained`` of model, tokenizer
and image processor). Descriptions of a random model are noise: the tests
check shapes, batching, dtypes and determinism.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLE_DATA, SPEECH_CLIP, needs

needs("torch", "transformers")
import torch  # noqa: E402

from curation.config import CurationConfig  # noqa: E402
from curation.decode import decode_clips  # noqa: E402
from curation.models.videollava import (  # noqa: E402
    DEFAULT_PROMPT,
    PROMPT_TEMPLATE,
    VideoLlavaCaptioner,
    random_videollava,
    sample_frame_indices,
    save_random_videollava,
)
from curation.records import InputItem  # noqa: E402
from tests.synthetic import make_clip  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_videollava(tmp_path_factory.mktemp("videollava") / "tiny-video-llava")


@pytest.fixture(scope="module")
def clips() -> list:
    return [make_clip(seconds=s, seed=i) for i, s in enumerate((2.0, 1.0, 3.0))]


@pytest.fixture(scope="module")
def real_clips() -> list:
    """Real footage as the pipeline decodes it: 4:3 320x240, 560x320 and 640x360 sources, scaled to 384 px at most."""
    paths = (SAMPLE_DATA / "imageio_realshort.mp4", SAMPLE_DATA / "techslides_small.mp4", SPEECH_CLIP)
    return [next(decode_clips(InputItem(str(p), p.stem), CurationConfig(clip_seconds=4.0))) for p in paths]


def test_frame_sampling_is_uniform() -> None:
    assert sample_frame_indices(100, 8).tolist() == [0, 14, 28, 42, 57, 71, 85, 99]
    assert sample_frame_indices(3, 8).tolist() == [0, 0, 1, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        sample_frame_indices(0, 8)


def test_loads_from_a_folder_and_describes_in_batches(folder: Path, clips: list) -> None:
    captioner = VideoLlavaCaptioner(folder, batch_size=2, max_new_tokens=8, local_files_only=True)
    inputs = captioner.inputs(clips)
    assert inputs["pixel_values_videos"].shape == (3, 8, 3, 28, 28)
    assert inputs["pixel_values_videos"].dtype == torch.float32
    video_id = captioner.parts()[1].convert_tokens_to_ids("<video>")
    assert int((inputs["input_ids"][0] == video_id).sum()) == 8 * ((28 // 14) ** 2 + 1)
    descriptions = captioner.describe(clips)
    assert len(descriptions) == 3 and all(isinstance(d, list) for d in descriptions)
    assert all(isinstance(s, str) and s for d in descriptions for s in d)
    assert captioner.generated_tokens > 0 and captioner.name == "tiny-video-llava"
    assert [b.clips for b in captioner.batches] == [2, 1]  # batch_size 2: one generate call per batch
    assert sum(b.output_tokens for b in captioner.batches) == captioner.generated_tokens
    assert all(0 < b.output_tokens <= 8 * b.clips for b in captioner.batches)
    assert all(b.tokens_per_s == b.output_tokens / b.seconds for b in captioner.batches)
    # greedy and batch-independent: one clip alone gets the same words as inside a batch
    assert captioner.describe(clips[1:2]) == descriptions[1:2]


def test_bf16(folder: Path, clips: list) -> None:
    captioner = VideoLlavaCaptioner(folder, dtype="bfloat16", max_new_tokens=4, local_files_only=True)
    assert captioner.inputs(clips[:1])["pixel_values_videos"].dtype == torch.bfloat16
    assert len(captioner.describe(clips[:1])) == 1


def test_matches_the_transformers_preprocessing_and_video_token_rule(real_clips: list) -> None:
    """On real frames, our inputs equal transformers' own: each frame's CLIP preprocessing and the ``<video>`` rule.

    ``VideoLlavaProcessor`` cannot be built in this virtualenv: its video
    processor needs torchvision, whose PyPI wheel would change transformers'
    processors here. The reference is built from the parts that do not
    need it: ``CLIPImageProcessorPil`` (the CLIP preprocessing that
    Video-LLaVA's processors apply, on PIL) for the pixels, exactly, and the
    processor's own ``replace_video_token`` for the prompt. The video
    processor itself is compared in ``tests/test_models_parity.py`` (in the
    reference virtualenv): at most 2 grey levels apart.
    """
    clips = real_clips
    import inspect

    from transformers import CLIPImageProcessorPil, VideoLlavaProcessor

    torch.manual_seed(0)
    model, tokenizer, image_processor = random_videollava("tiny")
    ours = VideoLlavaCaptioner.from_parts(model, tokenizer, image_processor).inputs(clips)

    side = image_processor.crop_size["height"]
    clip_processor = CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    videos = [c.frames[sample_frame_indices(len(c.frames), 8)] for c in clips]
    pixels = torch.stack([clip_processor(images=list(v), return_tensors="pt")["pixel_values"] for v in videos])
    assert ours["pixel_values_videos"].shape == (3, 8, 3, side, side)
    assert torch.equal(ours["pixel_values_videos"], pixels)

    defaults = inspect.signature(VideoLlavaProcessor.__init__).parameters
    rule = VideoLlavaProcessor.__new__(VideoLlavaProcessor)  # without __init__, which asks for the video processor
    rule.patch_size = model.config.vision_config.patch_size
    rule.num_additional_image_tokens = defaults["num_additional_image_tokens"].default
    rule.video_token = defaults["video_token"].default
    prompts = [
        PROMPT_TEMPLATE.format(
            video=rule.replace_video_token({"pixel_values_videos": pixels}, i), prompt=DEFAULT_PROMPT
        )
        for i in range(len(clips))
    ]
    theirs = tokenizer(prompts, return_tensors="pt", padding=True)
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])


def test_failure_is_an_exception_with_a_message(tmp_path: Path, clips: list) -> None:
    captioner = VideoLlavaCaptioner(tmp_path / "missing", local_files_only=True)
    with pytest.raises(OSError, match="missing"):  # from_pretrained: no such folder nor Hub repo
        captioner.describe(clips[:1])
    empty = make_clip(seconds=1.0)
    empty.frames = np.zeros((0, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="no frames"):
        sample_frame_indices(len(empty.frames), 8)
