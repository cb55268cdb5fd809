"""Near-duplicate clips by embedding cosine (issue item 6), for the pipeline's finalize step.

Duplicates are found greedily in the given order (the release's key order,
so the result is deterministic): a clip whose cosine with an earlier *kept*
clip reaches ``threshold`` is a duplicate of the most similar such clip, and
is recorded with it; otherwise it is kept. Exact, blockwise on NumPy: fine
for a unit or a split of up to some 10^5 clips; a million-clip release would
shard this by split or use an ANN index with the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def clip_vector(embeddings: np.ndarray, rows: Sequence[str]) -> np.ndarray:
    """The clip's audio-visual direction from its ``npy`` member: normalise(audio + visual)."""
    names = list(rows)
    vector = embeddings[names.index("audio")] + embeddings[names.index("visual")]
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def near_duplicates(
    keys: Sequence[str], vectors: np.ndarray, threshold: float = 0.95, block: int = 4096
) -> dict[str, tuple[str, float]]:
    """``{duplicate key: (key of the kept clip it duplicates, cosine)}``; vectors are normalised here."""
    if len(keys) != len(vectors):
        raise ValueError(f"near_duplicates: {len(keys)} keys but {len(vectors)} vectors")
    if not len(keys):
        return {}
    x = np.asarray(vectors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    kept: list[int] = []
    duplicates: dict[str, tuple[str, float]] = {}
    for start in range(0, len(x), block):
        chunk = x[start : start + block]
        against_kept = chunk @ x[kept].T if kept else np.zeros((len(chunk), 0), np.float32)
        within = chunk @ chunk.T
        local_kept: list[int] = []
        for i in range(len(chunk)):
            best, best_cos = -1, -np.inf
            if against_kept.shape[1]:
                j = int(np.argmax(against_kept[i]))
                best, best_cos = kept[j], float(against_kept[i, j])
            if local_kept:
                sims = within[i, local_kept]
                j = int(np.argmax(sims))
                if sims[j] > best_cos:
                    best, best_cos = start + local_kept[j], float(sims[j])
            if best >= 0 and best_cos >= threshold:
                duplicates[keys[start + i]] = (keys[best], round(best_cos, 6))
            else:
                local_kept.append(i)
        kept.extend(start + i for i in local_kept)
    return duplicates
