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

from tests.conftest import needs

needs("torch", "transformers")
import torch  # noqa: E402

from curation.models.videollava import (  # noqa: E402
    DEFAULT_PROMPT,
    PROMPT_TEMPLATE,
    VideoLlavaCaptioner,
    random_videollava,
    sample_frame_indices,
    save_random_videollava,
)
from tests.synthetic import make_clip  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_videollava(tmp_path_factory.mktemp("videollava") / "tiny-video-llava")


@pytest.fixture(scope="module")
def clips() -> list:
    return [make_clip(seconds=s, seed=i) for i, s in enumerate((2.0, 1.0, 3.0))]


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
    # greedy and batch-independent: one clip alone gets the same words as inside a batch
    assert captioner.describe(clips[1:2]) == descriptions[1:2]


def test_bf16(folder: Path, clips: list) -> None:
    captioner = VideoLlavaCaptioner(folder, dtype="bfloat16", max_new_tokens=4, local_files_only=True)
    assert captioner.inputs(clips[:1])["pixel_values_videos"].dtype == torch.bfloat16
    assert len(captioner.describe(clips[:1])) == 1


def test_matches_the_transformers_processor(clips: list) -> None:
    """Where ``VideoLlavaProcessor`` can be built (it needs a working torchvision), our inputs equal its own."""
    try:
        from transformers import VideoLlavaProcessor, VideoLlavaVideoProcessor

        torch.manual_seed(0)
        model, tokenizer, image_processor = random_videollava("tiny")
        video_processor = VideoLlavaVideoProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
        processor = VideoLlavaProcessor(
            image_processor=image_processor, video_processor=video_processor, tokenizer=tokenizer, patch_size=14
        )
    except (ImportError, AttributeError, RuntimeError) as exc:
        pytest.skip(f"VideoLlavaProcessor cannot be built here (torchvision): {exc}")
    captioner = VideoLlavaCaptioner.from_parts(model, tokenizer, image_processor)
    ours = captioner.inputs(clips[:2])
    videos = [c.frames[sample_frame_indices(len(c.frames), 8)] for c in clips[:2]]
    prompt = PROMPT_TEMPLATE.format(video="<video>", prompt=DEFAULT_PROMPT)
    theirs = processor(text=[prompt] * 2, videos=videos, return_tensors="pt", padding=True)
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    # PIL (image processor) and torchvision (video processor) bicubic resizing differ by at most one gray level
    assert float((ours["pixel_values_videos"] - theirs["pixel_values_videos"]).abs().max()) < 0.02


def test_failure_is_an_exception_with_a_message(tmp_path: Path, clips: list) -> None:
    captioner = VideoLlavaCaptioner(tmp_path / "missing", local_files_only=True)
    with pytest.raises(Exception, match="missing"):
        captioner.describe(clips[:1])
    empty = make_clip(seconds=1.0)
    empty.frames = np.zeros((0, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="no frames"):
        sample_frame_indices(len(empty.frames), 8)
