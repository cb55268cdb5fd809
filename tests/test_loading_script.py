"""`loading_script/acav1m.py`: the self-contained builder script, against the card-driven `load_dataset` path.

datasets >= 4 refuses scripts in `load_dataset`, so here the builder class is
instantiated directly. `load_dataset("…/acav1m.py", data_dir=…)` on datasets
3.x runs in a separate virtualenv named by ``ACAV1M_DS3_PYTHON`` (see
``loading_script/README.md``); without it that test is skipped.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pytest
import webdataset as wds

from acav1m_hf.loading import load
from acav1m_hf.release import list_shards
from acav1m_hf.schema import hf_features
from tests.conftest import missing_dependency
from tests.test_streaming import _Touch, read_raw

SCRIPT = Path(__file__).resolve().parents[1] / "loading_script" / "acav1m.py"
DS3_ENV = "ACAV1M_DS3_PYTHON"


@pytest.fixture(scope="module")
def script():
    """The script imported as a module (registered in sys.modules: datasets re-imports it by name for streaming)."""
    name = "acav1m_script"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def reference(release: Path, tmp_path_factory: pytest.TempPathFactory) -> datasets.DatasetDict:
    """The release as the card-driven path reads it, media left as bytes for comparison."""
    loaded = load(release, cache_dir=str(tmp_path_factory.mktemp("ref-cache")))
    return datasets.DatasetDict({split: undecoded(ds) for split, ds in loaded.items()})


def undecoded(ds):
    for column in ("mp4", "flac", "jpg", "mask.png"):
        ds = ds.cast_column(column, ds.features[column].__class__(decode=False))
    return ds


def records(rows) -> list[dict]:
    """What must agree between the two paths: key, metadata, caption, embeddings and the media bytes."""
    return [
        {
            "key": r["__key__"],
            "json": r["json"],
            "txt": r["txt"],
            "npy": r["npy"],
            **{
                m: None if r[m] is None else hashlib.sha256(r[m]["bytes"]).hexdigest()
                for m in ("mp4", "flac", "jpg", "mask.png")
            },
        }
        for r in rows
    ]


def test_features_are_the_schema_features(script):
    assert script.FEATURES == hf_features()
    assert list(script.FEATURES) == list(hf_features())


def test_script_is_self_contained():
    tree = ast.parse(SCRIPT.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {
        "__future__",
        "collections",
        "datasets",
        "io",
        "json",
        "numpy",
        "os",
        "posixpath",
        "re",
        "typing",
    }


def test_builder_yields_the_same_records_as_load_dataset(script, release: Path, reference, tmp_path: Path):
    builder = script.Acav1m(cache_dir=str(tmp_path), data_dir=str(release))
    builder.download_and_prepare()
    assert sorted(builder.info.splits) == sorted(reference)
    for split, ref in reference.items():
        ours = undecoded(builder.as_dataset(split=split))
        assert ours.features == ref.features
        assert records(ours) == records(ref), split
        streamed = builder.as_streaming_dataset(split=split)
        assert streamed.num_shards == len(list_shards(release)[split])
        # streamed metadata is not rounded through Arrow float32, so compare with the packaged builder's stream
        assert records(undecoded(streamed)) == records(undecoded(load(release, split=split, streaming=True))), split
        assert [r["__url__"] for r in ours] == [r["__url__"] for r in ref]


def test_builder_decodes_media(script, release: Path, tmp_path: Path):
    builder = script.Acav1m(cache_dir=str(tmp_path), data_dir=str(release))
    builder.download_and_prepare()
    row = builder.as_dataset(split="train")[0]
    assert type(row["mp4"]).__name__ == "VideoDecoder"
    assert int(row["flac"]["sampling_rate"]) == 16000 and row["jpg"].mode == "RGB"


def test_builder_never_unpickles_and_needs_shards(script, release: Path, tmp_path: Path):
    sentinel = tmp_path / "pwned"
    sample = dict(read_raw(list_shards(release)["train"][0])[0])
    sample["pyd"] = pickle.dumps(_Touch(sentinel))
    (tmp_path / "hostile" / "data").mkdir(parents=True)
    with wds.TarWriter(str(tmp_path / "hostile" / "data" / "train-00000.tar"), encoder=False) as writer:
        writer.write(sample)
    builder = script.Acav1m(cache_dir=str(tmp_path / "cache"), data_dir=str(tmp_path / "hostile"))
    builder.download_and_prepare()
    rows = list(builder.as_dataset(split="train"))
    assert [r["__key__"] for r in rows] == [sample["__key__"]] and "pyd" not in rows[0]
    assert not sentinel.exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no shards named"):
        script.Acav1m(cache_dir=str(tmp_path / "cache2"), data_dir=str(tmp_path / "empty")).download_and_prepare()


def test_datasets_4_refuses_the_script_in_load_dataset(release: Path):
    """Why the builder is tested directly here (ecosystem facts A1)."""
    if int(datasets.__version__.split(".")[0]) < 4:
        pytest.skip("datasets < 4 runs scripts")
    with pytest.raises(RuntimeError, match="Dataset scripts are no longer supported"):
        datasets.load_dataset(str(SCRIPT), data_dir=str(release))


DS3_PROGRAM = textwrap.dedent(
    """
    import hashlib, json, sys
    import datasets
    script, data_dir, cache = sys.argv[1:4]
    assert datasets.__version__.startswith("3."), datasets.__version__
    out = {"version": datasets.__version__, "splits": {}, "streamed": {}}
    loaded = datasets.load_dataset(script, data_dir=data_dir, cache_dir=cache, trust_remote_code=True)
    def digest(value):
        return None if value is None else hashlib.sha256(value["bytes"]).hexdigest()
    for split, ds in loaded.items():
        audio = [(r["sampling_rate"], len(r["array"])) for r in ds.select_columns(["flac"])["flac"]]
        # Video (datasets 3.x decodes it with torchvision, not installed there): compared as bytes
        raw = ds.cast_column("mp4", datasets.Video(decode=False))
        for m in ("flac", "jpg", "mask.png"):
            raw = raw.cast_column(m, type(ds.features[m])(decode=False))
        out["splits"][split] = {
            "records": [
                {"key": r["__key__"], "json": r["json"], "txt": r["txt"], "npy": r["npy"],
                 **{m: digest(r[m]) for m in ("mp4", "flac", "jpg", "mask.png")}}
                for r in raw
            ],
            "audio": audio,
        }
        streamed = datasets.load_dataset(script, data_dir=data_dir, cache_dir=cache, trust_remote_code=True,
                                         split=split, streaming=True)
        out["streamed"][split] = [r["__key__"] for r in streamed.cast_column("mp4", datasets.Video(decode=False))]
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_load_dataset_runs_the_script_on_datasets_3(release: Path, reference, tmp_path: Path):
    python = os.environ.get(DS3_ENV)
    if not python:
        missing_dependency(
            f"set {DS3_ENV} to a python with datasets<4 (e.g. .venv-ds3/bin/python; see loading_script/README.md)"
        )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_DATASETS_CACHE")}
    env["HF_DATASETS_OFFLINE"] = "1"
    done = subprocess.run(
        [python, "-c", DS3_PROGRAM, str(SCRIPT), str(release), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(result["splits"]) == sorted(reference)
    for split, ref in reference.items():
        got = result["splits"][split]
        assert got["records"] == json.loads(json.dumps(records(ref))), split
        assert result["streamed"][split] == ref["__key__"]
        assert all(rate == 16000 and n > 0 for rate, n in got["audio"])
