"""What every picture shares: grids of tiles, titled panels, boxes, greyed unseen pixels."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

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


def arrange(tiles: Sequence[Optional[np.ndarray]], rows: int, cols: int, gap: int = 2,
            fill: int = 200) -> np.ndarray:
    """Lay tiles out row by row on a rows x cols grid; every tile is placed at the top left of
    its place, none is resized. A row is as high as its highest tile (an empty row as the
    highest tile of all), a column as wide as the widest tile; ``None`` leaves a place empty;
    empty space and gaps are ``fill``."""
    if len(tiles) > rows * cols:
        raise ValueError(f'{len(tiles)} tiles do not fit a {rows}x{cols} grid.')
    placed = [t for t in tiles if t is not None]
    tw, th = max(t.shape[1] for t in placed), max(t.shape[0] for t in placed)
    heights = [max([t.shape[0] for t in tiles[r * cols:(r + 1) * cols] if t is not None] or [th])
               for r in range(rows)]
    canvas = np.full((sum(heights) + (rows - 1) * gap, cols * tw + (cols - 1) * gap, 3), fill,
                     np.uint8)
    for i, tile in enumerate(tiles):
        if tile is None:
            continue
        r, c = divmod(i, cols)
        y, x = sum(heights[:r]) + r * gap, c * (tw + gap)
        canvas[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return canvas


#: Widest panel in a grid: a grid of 80-megapixel panels helps nobody and costs gigabytes.
MAX_PANEL_WIDTH = 2048


def tile_panels(rows: Sequence[Sequence[Panel]], min_width: int = 224, gap: int = 4
                ) -> np.ndarray:
    """RGB uint8 grid: ``rows[r][c]`` is a ``(title, RGB image)`` pair.

    Every panel is scaled to one width (at least ``min_width``, so titles stay legible on
    small images, and at most :data:`MAX_PANEL_WIDTH`); short rows are padded with white.
    """
    width = max(min_width, min(MAX_PANEL_WIDTH,
                               max(img.shape[1] for row in rows for _, img in row)))
    ncols = max(len(row) for row in rows)
    cells: List[Optional[np.ndarray]] = []
    for row in rows:
        cells += [_titled(title, img, width) for title, img in row] + [None] * (ncols - len(row))
    return arrange(cells, len(rows), ncols, gap, fill=255)


def grey_unseen(drawn: np.ndarray, base: np.ndarray,
                seen_mask: Optional[np.ndarray]) -> np.ndarray:
    """``drawn`` with the pixels outside ``seen_mask`` (cropped away by the test pipeline, so
    the model never saw them) replaced by a darkened grey ``base``: a picture must not claim
    evidence the model could not have used."""
    if seen_mask is None or seen_mask.all():
        return drawn
    grey = (base.mean(axis=2, keepdims=True) * 0.5).astype(np.uint8)
    return np.where(seen_mask[..., None], drawn, grey)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: Optional[Sequence[str]] = None,
               colors: Optional[Sequence[Tuple[int, int, int]]] = None) -> np.ndarray:
    """Draw (N, 4) x1, y1, x2, y2 boxes (image pixels) with optional labels on a copy.

    Boxes are ordered and clipped first: a detector early in training can return inverted or
    out-of-image boxes, which must never cost the picture. Without ``colors`` a box is white
    with a black rim, visible on every colour of a JET map; with them (RGB, one per box) it
    has its own colour and its label sits on a bar of that colour.
    """
    out = image.copy()
    h, w = out.shape[:2]
    boxes = np.nan_to_num(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]),
                            np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)
    boxes = np.clip(boxes, 0, [w - 1, h - 1, w - 1, h - 1])
    thick = max(1, round(min(h, w) / 200))
    scale = max(0.3, min(h, w) / 800)
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = tuple(int(c) for c in colors[i]) if colors is not None else (255, 255, 255)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 0), thick + 2)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        if labels is not None and i < len(labels) and labels[i]:
            (tw, th), base = cv2.getTextSize(labels[i], cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            y = max(th + base, y1)
            bar = (0, 0, 0) if colors is None else color
            ink = (255, 255, 255) if sum(bar) < 450 else (0, 0, 0)
            cv2.rectangle(out, (x1, y - th - base), (x1 + tw, y), bar, -1)
            cv2.putText(out, labels[i], (x1, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1,
                        cv2.LINE_AA)
    return out
