"""Near-duplicate removal by embedding cosine: greedy, deterministic, each removal names the clip it duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from curation.models.dedup import clip_vector, near_duplicates


def test_duplicates_point_at_the_kept_clip() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 16)).astype(np.float32)
    vectors = np.concatenate([base, base[[1, 3]] + 0.01 * rng.normal(size=(2, 16)), base[[1]] * 3.0])
    keys = [f"k{i}" for i in range(len(vectors))]
    found = near_duplicates(keys, vectors, threshold=0.99)
    assert set(found) == {"k5", "k6", "k7"}
    assert found["k5"][0] == "k1" and found["k6"][0] == "k3" and found["k7"] == ("k1", pytest.approx(1.0))
    assert all(0.99 <= cos <= 1.0 + 1e-6 for _, cos in found.values())
    # blockwise gives the same answer, and the rule only compares with kept clips
    assert near_duplicates(keys, vectors, threshold=0.99, block=3) == found
    assert near_duplicates(keys, vectors, threshold=1.01) == {}
    assert near_duplicates([], np.zeros((0, 4))) == {}
    with pytest.raises(ValueError):
        near_duplicates(["a"], np.zeros((2, 4)))


def test_chains_do_not_cascade() -> None:
    # b is close to a, c is close to b but not to a: c is compared with kept clips only, so it stays
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([1.0, 0.3, 0.0])
    c = np.array([1.0, 0.6, 0.0])
    found = near_duplicates(["a", "b", "c"], np.stack([a, b, c]), threshold=0.95)
    assert found == {"b": ("a", pytest.approx(float(a @ b / np.linalg.norm(b)), abs=1e-6))}


def test_clip_vector() -> None:
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], np.float32)
    assert clip_vector(rows, ["audio", "visual", "text"]) == pytest.approx(np.array([0.70710677, 0.70710677]))
