"""Profiles: the cpu profile on the base install, the paper profile's settings, and the paper profile end to end.

The end-to-end run curates real and synthetic clips with the ``paper``
profile on CPU: a tiny random Video-LLaVA loaded from a folder, the
extractive condenser behind an OpenAI endpoint that is down (so the fallback
is exercised), Whisper tiny.en and a tiny random ImageBind; the release must
pass ``acav1m validate`` with every model-filled field present.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from curation import analyse, run
from curation.config import CurationConfig
from curation.profiles import PaperSettings, Profile, build_profile, load_paper_settings
from tests.conftest import DEDUP_EVERY_CLIP, SPEECH_CLIP, needs, tiny_paper


def test_cpu_profile_needs_no_model_library() -> None:
    code = (
        "import sys\n"
        "from curation.config import CurationConfig\n"
        "from curation.profiles import build_profile\n"
        "p = build_profile(CurationConfig())\n"
        "heavy = [m for m in ('torch', 'transformers', 'openai', 'faster_whisper', 'llama_cpp') if m in sys.modules]\n"
        "print(p.name, p.models()['aligner'], heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("cpu ") and out.strip().endswith("[]")


def test_models_names_every_role() -> None:
    profile = build_profile(CurationConfig())
    assert isinstance(profile, Profile)
    assert set(profile.models()) == {"captioner", "condenser", "transcriber", "embedder", "aligner"}
    with pytest.raises(ValueError, match="unknown profile"):
        build_profile(CurationConfig(profile="nope"))


def test_settings_precedence_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "paper.toml"
    config_file.write_text(
        '[paper]\ncondenser_model = "from-file"\ncaptioner = "/models/vl"\ncondenser_fallback = ["llama_cpp"]\n'
    )
    monkeypatch.setenv("ACAV1M_PROFILE_CONFIG", str(config_file))
    monkeypatch.setenv("ACAV1M_CONDENSER_MODEL", "from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    settings = load_paper_settings({"embedder_checkpoint": "random"})
    assert settings.condenser_model == "from-env" and settings.captioner == "/models/vl"
    assert settings.condenser_fallback == ("llama_cpp",) and settings.embedder_checkpoint == "random"
    assert settings.condenser_base_url == "http://127.0.0.1:9/v1"
    assert load_paper_settings({"condenser_model": "explicit"}).condenser_model == "explicit"
    config_file.write_text('api_key = "sk-nope"\n')
    with pytest.raises(ValueError, match="secrets are read from the environment"):
        load_paper_settings()
    config_file.write_text("captioner_max_new_tokens = 10\nmystery = 1\n")
    with pytest.raises(ValueError, match=f"{config_file}: unknown setting"):
        load_paper_settings()
    with pytest.raises(ValueError, match="unknown condenser"):
        PaperSettings.from_dict({"condenser": "gpt"})


def test_paper_profile_requires_an_explicit_imagebind_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACAV1M_IMAGEBIND_CHECKPOINT", raising=False)
    monkeypatch.delenv("ACAV1M_PROFILE_CONFIG", raising=False)
    with pytest.raises(ValueError, match="embedder_checkpoint"):
        build_profile(CurationConfig(profile="paper"))


def test_paper_profile_fails_at_start_up_on_a_missing_model_folder(tmp_path: Path) -> None:
    needs("torch", "imagebind")
    overrides = {"captioner": str(tmp_path / "no-such-model"), "embedder_arch": "tiny", "embedder_checkpoint": "random"}
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        build_profile(CurationConfig(profile="paper"), overrides)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        build_profile(CurationConfig(profile="paper"), {"embedder_checkpoint": str(tmp_path / "missing.pth")})


@pytest.mark.slow
def test_paper_profile_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs("torch", "transformers", "openai", "imagebind", "faster_whisper")
    from acav1m_hf.validate import validate_release
    from curation.models.condenser import FallbackCondenser
    from curation.models.videollava import save_random_videollava
    from tests.conftest import release_inputs

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(analyse, "_PROFILES", {})
    folder = save_random_videollava(tmp_path / "tiny-video-llava")
    overrides = {
        "captioner": str(folder),
        "captioner_max_new_tokens": 8,
        "captioner_local_files_only": True,
        "condenser": "openai",
        "condenser_model": "nobody-home",
        "condenser_base_url": "http://127.0.0.1:9/v1",  # the discard port: connection refused at once
        "condenser_max_retries": 0,
        "condenser_fallback": ["extractive"],
        "condenser_cache_dir": "none",
        "embedder_arch": "tiny",
        "embedder_checkpoint": "random",
        "offset_step": 0.5,
        "crops": 1,
    }

    def paper_with_tiny_models(config: CurationConfig) -> Profile:
        return build_profile(config, overrides)

    profile = paper_with_tiny_models(CurationConfig(profile="paper"))
    assert isinstance(profile.condenser, FallbackCondenser)
    assert profile.models()["embedder"] == "imagebind_tiny (random init)"
    assert "OPENAI_API_KEY" not in json.dumps(profile.settings)

    inputs = [*release_inputs(tmp_path / "inputs"), str(SPEECH_CLIP)]
    root = tmp_path / "acav1m"
    config = CurationConfig(
        profile="paper", clip_seconds=4.0, keep_flagged=True, batch_size=2, max_side=128, dedup_threshold=None
    )
    run.curate(inputs, root, config, profile_factory=paper_with_tiny_models)
    assert validate_release(root) == []

    samples = []
    for shard in sorted((root / "data").glob("*.tar")):
        with tarfile.open(shard) as tar:
            samples += [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    assert len(samples) >= 5
    for meta in samples:
        models = meta["pipeline"]["models"]
        assert meta["pipeline"]["profile"] == "paper"
        assert models["captioner"] == "tiny-video-llava" and models["condenser"] == "extractive"
        assert models["transcriber"] == "whisper-tiny.en (faster-whisper)"
        assert models["embedder"] == "imagebind_tiny (random init)" and models["aligner"] == "imagebind-alignment"
        assert meta["embeddings"]["present"] and meta["labels"]["category"]["label"]
        assert meta["alignment"]["instance"]["raw"] is not None
        caption = meta["caption"]
        assert caption["text"] and caption["origin"] == "tiny-video-llava + extractive", caption
        assert meta["embeddings"]["rows"] == ["audio", "visual", "text"]
    speech = [m["caption"]["transcript"] for m in samples if "forensics" in m["source"]["path"]]
    assert any(t and "directory" in t.lower() for t in speech), speech
    assert any('Speech: "' in m["caption"]["text"] for m in samples if "forensics" in m["source"]["path"])


def test_near_duplicates_are_removed_across_units_and_recorded(tmp_path: Path) -> None:
    """With a threshold of -1 every clip duplicates the first one kept: all others leave their shards, recorded."""
    needs("torch", "imagebind")
    from acav1m_hf.validate import validate_release
    from tests.conftest import release_inputs

    root = tmp_path / "acav1m"
    report = run.curate(release_inputs(tmp_path / "inputs"), root, DEDUP_EVERY_CLIP, profile_factory=tiny_paper)
    assert validate_release(root) == []
    import pyarrow.parquet as pq

    (index,) = (root / "metadata").glob("*.parquet")
    (kept,) = pq.read_table(index, columns=["key"]).column("key").to_pylist()
    duplicates = report["near_duplicates"]
    assert report["counts"]["clips"]["kept"] == 1
    assert len(duplicates) == report["reasons"]["clips"]["near_duplicate"] >= 5
    assert {of for of, _ in duplicates.values()} == {kept} and kept not in duplicates
