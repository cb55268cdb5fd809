"""Localization labels from any aligner's heatmap: peak, box and segmentation mask.

The heatmap (any resolution, values in [0, 1]) is upsampled to the frame size;
the mask is the region above half-way between the map's minimum and maximum,
and the box encloses it. Coordinates are normalised: x right, y down, [0, 1].
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def heatmap_to_labels(heatmap: np.ndarray, width: int, height: int) -> tuple[list[float], list[float], np.ndarray]:
    """Return ``([x, y] peak, [x0, y0, x1, y1] box, uint8 mask of shape (height, width))``."""
    heat = np.asarray(
        Image.fromarray(np.asarray(heatmap, np.float32), mode="F").resize((width, height), Image.BILINEAR)
    )
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    peak = [(col + 0.5) / width, (row + 0.5) / height]
    low, high = float(heat.min()), float(heat.max())
    mask = heat >= low + 0.5 * (high - low) if high > low else np.ones_like(heat, dtype=bool)
    rows, cols = np.nonzero(mask)
    box = [cols.min() / width, rows.min() / height, (cols.max() + 1) / width, (rows.max() + 1) / height]
    return peak, box, (mask * 255).astype(np.uint8)
