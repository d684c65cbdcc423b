"""Tile titled pictures into one image (methods side by side, one row per category)."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import cv2
import numpy as np

Panel = Tuple[str, np.ndarray]


def _titled(title: str, image: np.ndarray, width: int) -> np.ndarray:
    """Scale ``image`` to ``width`` and put a white title bar with ``title`` above it."""
    h, w = image.shape[:2]
    height = max(1, int(round(h * width / w)))
    interp = cv2.INTER_NEAREST if width >= 2 * w else cv2.INTER_AREA if width < w else \
        cv2.INTER_LINEAR
    body = cv2.resize(image, (width, height), interpolation=interp)
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    scale = 0.5
    # Shrink the font until the title fits: small images still get a readable title bar.
    while scale > 0.3 and cv2.getTextSize(title, font, scale, thickness)[0][0] > width - 8:
        scale -= 0.05
    (tw, th), base = cv2.getTextSize(title, font, scale, thickness)
    bar = np.full((th + base + 10, width, 3), 255, np.uint8)
    cv2.putText(bar, title, (4, th + 5), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return np.concatenate([bar, body], axis=0)


def tile_panels(rows: Sequence[Sequence[Panel]], min_width: int = 224, gap: int = 4
                ) -> np.ndarray:
    """RGB uint8 grid: ``rows[r][c]`` is a ``(title, RGB image)`` pair.

    Every panel is scaled to one width (at least ``min_width``, so titles stay legible on
    small images); short rows are padded with white.
    """
    width = max(min_width, max(img.shape[1] for row in rows for _, img in row))
    ncols = max(len(row) for row in rows)
    lines: List[np.ndarray] = []
    for row in rows:
        cells = [_titled(title, img, width) for title, img in row]
        height = max(c.shape[0] for c in cells)
        cells = [np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0)), constant_values=255)
                 for c in cells]
        cells += [np.full((height, width, 3), 255, np.uint8)] * (ncols - len(cells))
        spaced = []
        for i, c in enumerate(cells):
            if i:
                spaced.append(np.full((height, gap, 3), 255, np.uint8))
            spaced.append(c)
        lines.append(np.concatenate(spaced, axis=1))
    out = []
    for i, line in enumerate(lines):
        if i:
            out.append(np.full((gap, line.shape[1], 3), 255, np.uint8))
        out.append(line)
    return np.concatenate(out, axis=0)
