"""Localization labels from any aligner's heatmap: peak, box and segmentation mask.

Every profile's aligner returns a coarse map of where the sound comes from
(motion-onset correlation per cell in the cpu profile, patch-token similarity
to the audio embedding with ImageBind); this module turns it into the schema's
labels. Coordinates are normalised: x right, y down, in [0, 1].
"""

from __future__ import annotations

import numpy as np


def heatmap_to_labels(heatmap: np.ndarray, width: int, height: int) -> tuple[list[float], list[float], np.ndarray]:
    """Peak ``[x, y]``, box ``[x0, y0, x1, y1]`` (normalised) and a uint8 ``(height, width)`` mask (255 = sounding).

    The peak is the map's maximum refined below a cell by a parabola in x and
    y. The sounding region is the connected set of cells at or above half the
    maximum that contains the peak (so a second, weaker blob elsewhere does not
    stretch the box); the mask is that region's bilinear upsampling, again
    thresholded at half the maximum, and the box encloses the mask.
    """
    heat = np.nan_to_num(np.asarray(heatmap, dtype=np.float64), nan=0.0)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array, got shape {heat.shape}")
    top = float(heat.max())
    if not top > 0.0:
        raise ValueError("heatmap has no positive value: there is no sounding region to label")
    rows, cols = heat.shape
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    dy = parabolic_offset(heat[:, c], int(r))
    dx = parabolic_offset(heat[r, :], int(c))
    peak = [float(np.clip((c + 0.5 + dx) / cols, 0, 1)), float(np.clip((r + 0.5 + dy) / rows, 0, 1))]
    region = _component(heat >= 0.5 * top, (int(r), int(c)))
    up = _bilinear(np.where(region, heat, 0.0), width, height)
    mask = up >= 0.5 * top - 1e-12
    if not mask.any():  # a map much coarser than one pixel: fall back to the peak pixel
        mask[min(height - 1, int(peak[1] * height)), min(width - 1, int(peak[0] * width))] = True
    ys, xs = np.nonzero(mask)
    box = [xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height]
    return peak, [float(v) for v in box], mask.astype(np.uint8) * 255


def explicit_labels(
    box: list[float] | None, mask: np.ndarray | None, width: int, height: int
) -> tuple[list[float], list[float], np.ndarray | None]:
    """Peak, box and uint8 mask (or None) from a model's own box and/or float mask, instead of a heatmap.

    The mask is the float map bilinearly resized to ``(height, width)`` and
    thresholded at 0.5; without a box, the box encloses the mask. The peak is
    the box's centre: a model that gives a box says where the object is, not
    which point of it sounds.
    """
    pixels = None
    if mask is not None:
        grid = np.asarray(mask, dtype=np.float64)
        if grid.ndim != 2 or grid.size == 0 or not np.isfinite(grid).all():
            raise ValueError(f"mask must be a non-empty 2-D array of finite values, got shape {grid.shape}")
        inside = _bilinear(np.clip(grid, 0.0, 1.0), width, height) >= 0.5
        pixels = inside.astype(np.uint8) * 255 if inside.any() else None
    if box is None:
        if pixels is None:
            raise ValueError("neither a box nor a mask with any pixel at or above 0.5: nothing to label")
        ys, xs = np.nonzero(pixels)
        box = [xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height]
    x0, y0, x1, y1 = (float(np.clip(v, 0.0, 1.0)) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box must be [x0, y0, x1, y1] with x1 > x0 and y1 > y0 in [0, 1], got {list(box)}")
    return [(x0 + x1) / 2, (y0 + y1) / 2], [x0, y0, x1, y1], pixels


def parabolic_offset(values: np.ndarray, i: int) -> float:
    """Sub-sample offset of the vertex of the parabola through ``values[i - 1 : i + 2]``, in [-0.5, 0.5].

    The one peak refinement of the project: the heatmap's peak here, the sync
    offsets of the signal aligner and of ImageBind. 0 at an edge, where a value
    is not finite, or where ``values[i]`` is not a strict maximum.
    """
    if i <= 0 or i >= len(values) - 1:
        return 0.0
    left, mid, right = (float(values[i - 1]), float(values[i]), float(values[i + 1]))
    if not (np.isfinite(left) and np.isfinite(mid) and np.isfinite(right)):
        return 0.0
    den = left - 2.0 * mid + right
    if den >= 0.0:  # not a strict maximum
        return 0.0
    return float(np.clip(0.5 * (left - right) / den, -0.5, 0.5))


def _component(mask: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The 4-connected component of ``mask`` that contains ``seed`` (a flood fill; the grid is small)."""
    out = np.zeros_like(mask, dtype=bool)
    stack = [seed]
    while stack:
        r, c = stack.pop()
        if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c] and not out[r, c]:
            out[r, c] = True
            stack.extend(((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)))
    return out


def _bilinear(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """Upsample a cell map to ``(height, width)`` pixels, cell centres at pixel-centre coordinates (edges clamped)."""
    rows, cols = grid.shape

    def coords(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, pos - i0

    y0, y1, fy = coords(height, rows)
    x0, x1, fx = coords(width, cols)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]
