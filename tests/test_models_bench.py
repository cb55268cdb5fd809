"""The prepared GPU run (`bench/gpu_paper.py`) runs on the CPU with tiny models (``--tiny``), before a device is used.

No figure is judged (a tiny run on a shared CPU means nothing); what is
checked is that one run yields every figure of the goals table, as JSON.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import needs


@pytest.mark.slow
def test_gpu_run_smoke_on_cpu(tmp_path) -> None:
    needs("torch", "transformers", "imagebind")
    from bench.gpu_paper import main

    out = tmp_path / "figures.json"
    figures = main(["--tiny", "--clips", "2", "--seconds", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(figures))
    assert figures["clips"] == 2 and figures["clip_seconds"] == 2.0 and figures["device"] == "cpu"
    sizes = figures["batch_sizes"]
    assert sizes["clips_per_stage_batch"] == 2 and sizes["embedder_rows_per_pass"] == 16
    assert sizes["embedder_vision_rows_per_batch"] == 2 * 2 * 3  # 2 clips x 2 windows x 3 crops
    assert sizes["embedder_audio_rows_per_batch"] == 2 * 2 * 11  # x 11 offsets (+-1 s in 0.2 s)
    assert len(figures["captioner_tokens_per_s_per_batch"]) == 1  # the warm-up batch is not counted
    assert figures["captioner_output_tokens_per_s"] > 0 and figures["embedder_flops"] > 0
    assert 0.0 <= figures["gpu_wait_for_decode_fraction"] <= 1.0
    assert figures["embedder_fraction_of_bf16_peak"] is None and figures["gpu_memory_gib"] is None  # no GPU here
