"""The prepared GPU run of the ``paper`` profile: every figure of issue 13's goals table from one run, as JSON.

Runs the profile's model stages through the code ``curate`` runs
(`curation.captioning.caption_batch`, then `curation.analyse.guarded_analyses`
and `realign_all`: batched captions, batched alignment and re-alignment) on
real decoding: Video-LLaVA-7B's shapes (CLIP ViT-L/14 + Llama-7B) and
ImageBind-huge, both randomly initialised (no weights can be fetched on the
device machine) in bf16, over clips decoded by PyAV in background threads
(`curation.decode.decode_clips`), ``--decode-ahead`` batches ahead of the
model loop (`curation.decode_ahead.ahead`, as curate does). It reports the
batch sizes, clips/s end to end and per stage, the captioner's output
tokens/s (per batch and overall), the embedder's achieved TFLOP/s (matmul
FLOPs counted per trunk pass, over the align stage's wall time) against the
card's dense bf16 peak, the share of the loop spent waiting for decoded
clips, and peak GPU memory. The first batch (kernel selection, caches) is
not counted. ``--max-seconds`` ends the measured loop early, so a slow
device still reports what it did.

Random weights change nothing about the cost except the captioner's output
length, which is fixed here (``min_new_tokens = max_new_tokens``), and which
clips are re-aligned (reported).

    python bench/gpu_paper.py --json out.json   # on the GPU machine (see docs/models.md)
    python bench/gpu_paper.py --tiny            # CPU smoke test: tiny models, a few clips
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BF16_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "GH200": 989.4, "A100": 312.0, "L40S": 362.0, "L4": 121.0}
"""Dense bf16 tensor-core peaks from the vendors' datasheets (SXM parts; no sparsity)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random models on the CPU: a smoke test")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--clips", type=int, default=None, help="clips measured (default 500; 4 with --tiny)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length, seconds")
    parser.add_argument("--files", type=int, default=None, help="distinct synthetic videos (default 2; 1 with --tiny)")
    parser.add_argument("--clips-per-file", type=int, default=6, help="clips in each synthetic video")
    parser.add_argument("--size", default="360x640", help="synthetic video frame size HxW")
    parser.add_argument("--max-side", type=int, default=384, help="decoded frames' longest side (curation's default)")
    parser.add_argument("--batch-size", type=int, default=32, help="clips per model-stage batch")
    parser.add_argument("--captioner-batch", type=int, default=None, help="clips per generate call (default: all)")
    parser.add_argument("--embedder-max-batch", type=int, default=256, help="rows per encoder pass")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder trunks (embedder_compile)")
    parser.add_argument("--decode-workers", type=int, default=os.cpu_count() or 1, help="decoding threads")
    parser.add_argument("--decode-ahead", type=int, default=4, help="batches decoded ahead of the model loop")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--offset-step", type=float, default=0.2)
    parser.add_argument("--max-seconds", type=float, default=240.0, help="end the measured loop after this long")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak, if not known")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.tiny:
        args.clips = args.clips or 4
        args.files = args.files or 1
        args.size = "96x128" if args.size == "360x640" else args.size
        args.max_new_tokens = min(args.max_new_tokens, 8)
        args.batch_size = min(args.batch_size, 2)
        args.embedder_max_batch = min(args.embedder_max_batch, 16)
        args.seconds = min(args.seconds, 3.0)
        args.clips_per_file = min(args.clips_per_file, 2)
    args.clips, args.files = args.clips or 500, args.files or 2
    args.captioner_batch = args.captioner_batch or args.batch_size
    return args


def make_inputs(folder: Path, args: argparse.Namespace, size: tuple[int, int]) -> list[Any]:
    """``args.files`` synthetic videos (H.264 + AAC, 25 fps), listed again and again until they hold enough clips.

    Writing hours of synthetic video would cost the device session more than
    the measurement; a few files decoded many times cost the decoder the same.
    """
    from curation.records import InputItem
    from tests.synthetic import make_clip, write_video_file

    def write(k: int) -> str:
        clip = make_clip(seconds=args.clips_per_file * args.seconds + 0.5, fps=25, seed=200 + k, size=size)
        return str(write_video_file(folder / f"bench_{k:03d}.mp4", clip))

    with ThreadPoolExecutor(min(args.files, os.cpu_count() or 1)) as pool:
        paths = list(pool.map(write, range(args.files)))
    needed = -(-(args.clips + args.batch_size) // args.clips_per_file)
    return [InputItem(path=paths[i % len(paths)], video_id=f"bench_{i:04d}") for i in range(needed)]


class DecodeClock:
    """Seconds the decoding threads spent, and the clips they decoded (for clips/s per decoding thread)."""

    def __init__(self) -> None:
        self.busy_s = 0.0
        self.decoded = 0
        self.lock = threading.Lock()


def decoded_batches(
    items: list[Any], config: Any, workers: int, limit: int, batch_size: int, clock: DecodeClock
) -> Iterator[list[Any]]:
    """The first ``limit`` clips of ``items`` in batches, in order, ``workers`` inputs decoded at once in threads.

    This is the source that `curation.decode_ahead.ahead` runs ahead of the
    model loop, as `curation.unit` does with one input at a time: one input
    decoding thread could not feed a GPU, so here ``workers`` threads share it.
    """
    from curation.decode import decode_clips
    from curation.unit import batches

    def decode(item: Any) -> list[Any]:
        start = time.perf_counter()
        clips = list(decode_clips(item, config))
        with clock.lock:
            clock.busy_s += time.perf_counter() - start
            clock.decoded += len(clips)
        return clips

    def in_order() -> Iterator[Any]:
        left = limit
        rest = iter(items[workers:])
        with ThreadPoolExecutor(workers) as pool:
            try:
                pending = deque(pool.submit(decode, item) for item in items[:workers])
                while pending and left > 0:
                    decoded = pending.popleft().result()[:left]
                    left -= len(decoded)
                    following = next(rest, None)
                    if following is not None:  # the window stays full while this input's clips go
                        pending.append(pool.submit(decode, following))
                    yield from decoded
            finally:
                pool.shutdown(cancel_futures=True)

    return batches(in_order(), batch_size)


def cuda_sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def peak_tflops(device: str, given: float | None) -> tuple[str, float | None]:
    if not device.startswith("cuda"):
        return "cpu", given
    import torch

    name = torch.cuda.get_device_name()
    if given:
        return name, given
    for key, value in BF16_PEAK_TFLOPS.items():
        if key in name:
            return name, value
    return name, None


def build_profile(args: argparse.Namespace, device: str, dtype: str) -> Any:
    """The paper profile's roles from random-weight models: Video-LLaVA (7B shapes), ImageBind-huge, extractive."""
    from curation.models.condenser_offline import ExtractiveCondenser
    from curation.models.imagebind import ImageBindEmbedder
    from curation.models.imagebind_aligner import AlignerSettings, ImageBindAligner, load_labels
    from curation.models.videollava import VideoLlavaCaptioner, random_videollava
    from curation.profiles import Profile

    model, tokenizer, processor = random_videollava("tiny" if args.tiny else "7b", device=device, dtype=dtype)
    captioner = VideoLlavaCaptioner.from_parts(
        model,
        tokenizer,
        processor,
        device=device,
        dtype=dtype,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.captioner_batch,
        generation={"min_new_tokens": args.max_new_tokens},
    )
    embedder = ImageBindEmbedder.build(
        "tiny" if args.tiny else "huge",
        "random",
        device=device,
        dtype=dtype,
        max_batch=args.embedder_max_batch,
        compile=args.compile,
    )
    aligner = ImageBindAligner(embedder, load_labels(), AlignerSettings(offset_step=args.offset_step))
    aligner.label_vectors()
    return Profile("paper", aligner=aligner, captioner=captioner, condenser=ExtractiveCondenser())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import torch

    from curation.analyse import guarded_analyses, realign_all
    from curation.captioning import caption_batch
    from curation.config import CurationConfig
    from curation.decode_ahead import ahead

    device = args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    dtype = "bfloat16" if device.startswith("cuda") else "float32"
    height, width = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    figures: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "device": device, "dtype": dtype}

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        t = time.perf_counter()
        items = make_inputs(Path(tmp), args, (height, width))
        figures["setup_inputs_s"] = round(time.perf_counter() - t, 1)

        t = time.perf_counter()
        profile = build_profile(args, device, dtype)
        captioner, aligner = profile.captioner, profile.aligner
        embedder = aligner.embedder
        cuda_sync(device)
        figures["load_models_s"] = round(time.perf_counter() - t, 1)
        figures["params"] = {
            "captioner": sum(p.numel() for p in captioner.parts()[0].parameters()),
            "embedder": sum(p.numel() for p in embedder.model.parameters()),
        }

        config = CurationConfig(
            profile="paper", clip_seconds=args.seconds, max_side=args.max_side, batch_size=args.batch_size
        )
        clock = DecodeClock()
        source = decoded_batches(
            items, config, args.decode_workers, args.clips + args.batch_size, args.batch_size, clock
        )
        decoded = stack.enter_context(ahead(source, args.decode_ahead))
        stage = {"caption": 0.0, "align": 0.0}
        wait = flops = 0.0
        done = realigned = null_captions = vision_rows = audio_rows = 0
        generation: list[Any] = []
        warm = False
        start = time.perf_counter()
        while True:
            t = time.perf_counter()
            batch = next(decoded, None)
            waited = time.perf_counter() - t
            if batch is None:
                break
            t = time.perf_counter()
            batches0 = len(captioner.batches)
            captions = caption_batch(batch, profile)  # batched generation, then the condenser per clip
            cuda_sync(device)
            t_caption = time.perf_counter() - t
            t = time.perf_counter()
            flops0 = embedder.flops
            texts = [c.text for c in captions]
            decisions = realign_all(batch, guarded_analyses(aligner, batch, texts), texts, aligner, config)
            cuda_sync(device)
            t_align = time.perf_counter() - t
            if not warm:  # the first batch pays for kernel selection and caches: not counted
                warm = True
                if device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                continue
            wait += waited
            stage["caption"] += t_caption
            stage["align"] += t_align
            flops += embedder.flops - flops0
            generation.extend(captioner.batches[batches0:])
            done += len(batch)
            realigned += sum(d.realigned for d, _ in decisions)
            null_captions += sum(c.text is None for c in captions)
            for clip in batch:
                plan = aligner._plan(clip)
                vision_rows += len(plan.starts) * aligner.settings.crops
                audio_rows += len(plan.starts) * len(plan.offsets)
            if done >= args.clips or time.perf_counter() - start > args.max_seconds:
                break
        wall = time.perf_counter() - start

    name, peak = peak_tflops(device, args.peak_tflops)
    embed_tflops = flops / stage["align"] / 1e12 if stage["align"] else 0.0
    tokens = sum(b.output_tokens for b in generation)
    generate_s = sum(b.seconds for b in generation)
    batches = max(1, -(-done // args.batch_size))
    figures.update(
        card=name,
        clips=done,
        clip_seconds=args.seconds,
        wall_s=round(wall, 2),
        batch_sizes={
            "clips_per_stage_batch": args.batch_size,
            "clips_per_generate": args.captioner_batch,
            "embedder_rows_per_pass": args.embedder_max_batch,
            "embedder_vision_rows_per_batch": round(vision_rows / batches, 1),
            "embedder_audio_rows_per_batch": round(audio_rows / batches, 1),
        },
        clips_per_s={
            "end_to_end": round(done / wall, 3) if wall else None,
            **{k: round(done / v, 3) if v else None for k, v in stage.items()},
            "decode_per_thread": round(clock.decoded / clock.busy_s, 3) if clock.busy_s else None,
        },
        stage_s={k: round(v, 2) for k, v in stage.items()},
        gpu_wait_for_decode_fraction=round(wait / wall, 4) if wall else None,
        captioner_output_tokens_per_s=round(tokens / generate_s, 1) if generate_s else None,
        captioner_tokens_per_s_per_batch=[round(b.tokens_per_s, 1) for b in generation],
        captioner_generate_share_of_caption_stage=round(generate_s / stage["caption"], 3) if stage["caption"] else None,
        embedder_flops=flops,
        embedder_tflops=round(embed_tflops, 2),
        embedder_fraction_of_bf16_peak=round(embed_tflops / peak, 4) if peak else None,
        bf16_peak_tflops=peak,
        realigned_clips=realigned,
        null_captions=null_captions,
        gpu_memory_gib=(
            {
                "peak_allocated": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                "peak_reserved": round(torch.cuda.max_memory_reserved() / 2**30, 2),
            }
            if device.startswith("cuda")
            else None
        ),
        host_peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        cost_s_per_clip={k: round(v / done, 4) if done else None for k, v in stage.items()},
    )
    print_report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))  # the last line: the figures, even where the JSON file cannot be fetched
    return figures


def print_report(f: dict[str, Any]) -> None:
    c = f["clips_per_s"]
    print(
        f"paper profile GPU run on {f['card']} ({f['device']}, {f['dtype']}): {f['clips']} clips of "
        f"{f['clip_seconds']} s in {f['wall_s']} s"
    )
    print(f"  models: captioner {f['params']['captioner'] / 1e9:.2f} B, embedder {f['params']['embedder'] / 1e9:.2f} B")
    print(f"  setup: inputs {f['setup_inputs_s']} s, models {f['load_models_s']} s")
    print(f"  batch sizes: {f['batch_sizes']}")
    print(
        f"  clips/s: end-to-end {c['end_to_end']}, caption {c['caption']} (with condensing), align {c['align']} "
        f"(with re-alignment: {f['realigned_clips']} clips), decode {c['decode_per_thread']} per thread"
    )
    print(f"  seconds per clip: {f['cost_s_per_clip']}")
    print(f"  GPU waiting for decoded clips: {100 * (f['gpu_wait_for_decode_fraction'] or 0):.1f}% of the loop")
    print(
        f"  captioner: {f['captioner_output_tokens_per_s']} output tokens/s "
        f"(per batch: {f['captioner_tokens_per_s_per_batch'][:8]}...)"
    )
    peak = f["bf16_peak_tflops"]
    share = f" = {100 * f['embedder_fraction_of_bf16_peak']:.1f}% of the {peak} TFLOP/s bf16 peak" if peak else ""
    print(f"  embedder: {f['embedder_tflops']} TFLOP/s{share}")
    print(f"  memory: GPU {f['gpu_memory_gib']}, host peak RSS {f['host_peak_rss_gib']} GiB")


if __name__ == "__main__":
    main()
