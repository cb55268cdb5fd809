"""The GPU check script runs on the CPU with tiny models (``--tiny``), so it is known to work before a device is used."""

from __future__ import annotations

import pytest

from tests.conftest import needs


@pytest.mark.slow
def test_gpu_check_smoke_on_cpu(tmp_path) -> None:
    needs("torch", "transformers", "imagebind")
    from bench.gpu_paper import main

    out = tmp_path / "figures.json"
    figures = main(["--tiny", "--clips", "2", "--files", "1", "--seconds", "2", "--json", str(out)])
    assert out.is_file() and figures["clips"] == 2
    assert figures["clips_per_s"]["end_to_end"] > 0 and figures["embedder_tflops"] >= 0
    assert 0.0 <= figures["gpu_wait_for_decode_fraction"] <= 1.0
