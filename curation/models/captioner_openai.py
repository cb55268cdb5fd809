"""`OpenAICaptioner`: a clip's descriptions from a VLM served behind an OpenAI-compatible endpoint (Algorithm 1, line 6).

Where Video-LLaVA in process (`curation.models.videollava`) is bound to the
GPU it runs on, a VLM served by vLLM or SGLang scales to a fleet of servers.
Each clip is one multimodal chat request: ``num_frames`` frames sampled
uniformly over the clip (`sample_frame_indices`, as Video-LLaVA samples
them), each a base64 JPEG data URL (``image_url`` parts), then the prompt.
The answer is split into sentences: the descriptions the condenser merges.

The endpoint's client is the condenser's (`OpenAIChat`): the same retries
with backoff, disk cache of answers (keyed by the request, images
included), concurrency limit, circuit breaker and redaction of the API key
and URL credentials. A clip's failure stays with that clip: `describe` puts
the exception in its place, and the captioning stage records it on that clip
only (`curation.captioning`), so one bad request does not null a batch.
"""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from curation.models.condenser_openai import OpenAIChat
from curation.models.text import split_sentences
from curation.models.videollava import DEFAULT_PROMPT, sample_frame_indices
from curation.records import Clip


def jpeg_data_url(frame: np.ndarray, quality: int = 90) -> str:
    """An RGB uint8 frame ``(H, W, 3)`` as a ``data:image/jpeg;base64,...`` URL (same pixels, same bytes)."""
    from PIL import Image

    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"captioner: a frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    buffer = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAICaptioner(OpenAIChat):
    """Descriptions of clips from a served VLM; ``model`` is the name the server serves it under.

    Keyword arguments other than the frame and prompt settings are
    `OpenAIChat`'s (timeout, retries, ``max_concurrency``, circuit, cache).
    A batch's clips are asked concurrently, up to ``max_concurrency``.
    """

    role = "captioner"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        num_frames: int = 8,
        prompt: str = DEFAULT_PROMPT,
        jpeg_quality: int = 90,
        max_tokens: int = 96,
        **chat: Any,
    ) -> None:
        if num_frames < 1:
            raise ValueError(f"OpenAICaptioner: num_frames must be >= 1, got {num_frames}")
        super().__init__(model, base_url, api_key, max_tokens=max_tokens, **chat)
        self.num_frames, self.prompt, self.jpeg_quality = num_frames, prompt, jpeg_quality

    def messages(self, clip: Clip) -> list[dict[str, Any]]:
        """The chat request for one clip: its sampled frames as images, then the prompt."""
        frames = clip.frames[sample_frame_indices(len(clip.frames), self.num_frames)]
        images = [{"type": "image_url", "image_url": {"url": jpeg_data_url(f, self.jpeg_quality)}} for f in frames]
        return [{"role": "user", "content": [*images, {"type": "text", "text": self.prompt}]}]

    def describe(self, clips: list[Clip]) -> list[list[str] | Exception]:
        """Each clip's sentences, or the exception its request ended in (recorded on that clip alone)."""
        if not clips:
            return []
        with ThreadPoolExecutor(min(len(clips), self.max_concurrency), thread_name_prefix="captioner") as pool:
            return list(pool.map(self._describe_one, clips))

    def _describe_one(self, clip: Clip) -> list[str] | Exception:
        try:
            return split_sentences(self.ask(self.messages(clip)))
        except Exception as exc:  # noqa: BLE001 - this clip's failure, not the batch's
            return exc
