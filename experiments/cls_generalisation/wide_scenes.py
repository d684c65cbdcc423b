"""A wider training generator for the demo classifiers (an experiment, not shipped).

It rebuilds, from the description in docs/en/demo_models.md, the training scenes of the lost
branch ``exp/cls-generalisation``: :class:`WideSceneGenerator` is the training generator of
:mod:`mmcam.datasets.digit_scenes` with

* six procedural textures besides the photo crops and the shape clutter: colour-mapped value
  noise, plaid, dots, tiles, smooth curves and contour lines of value noise (3-14 levels, lines
  1-9 px wide);
* digits inked with one colour, a two-colour gradient or colour-mapped noise, and outlined on
  35 % of them;
* a Gaussian blur (radius 0.1-2.5 px) on 30 % of the finished scenes.

Only training-split digits and photos are drawn (the parent's split rules), so the val and test
splits of ``data/digit_scenes`` are unchanged.  Write a training split with::

    PYTHONPATH=. python experiments/cls_generalisation/wide_scenes.py /tmp/wide/cls 32000 \
        --seed 5 --varied 0.8

then point ``train_dataloader.dataset.data_root`` at it (README.md in this folder).
"""
from __future__ import annotations

import argparse
from typing import Callable, List, Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mmcam.datasets.digit_scenes import (BOX_THRESHOLD, DigitSceneGenerator, Scene,
                                         linear_gradient, write_classification)

#: Share of outlined digits and of blurred scenes.
OUTLINE_SHARE = 0.35
BLUR_SHARE = 0.3


def value_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 3
                ) -> np.ndarray:
    """(height, width) smooth noise in 0..1: random grids of growing size, upsampled, summed."""
    out = np.zeros((height, width), np.float32)
    cells = int(rng.integers(2, 6))
    weight, total = 1.0, 0.0
    for _ in range(octaves):
        grid = rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
        out += weight * np.asarray(Image.fromarray(grid).resize((width, height), Image.BICUBIC),
                                   np.float32) / 255.0
        total += weight
        cells, weight = cells * 2, weight * 0.5
    out /= total
    return (out - out.min()) / max(float(out.max() - out.min()), 1e-6)


def colour_ramp(rng: np.random.Generator, t: np.ndarray,
                colours: Optional[List[np.ndarray]] = None) -> np.ndarray:
    """Map ``t`` (0..1) through a ramp of 2-4 random colours (or ``colours``)."""
    if colours is None:
        colours = [rng.uniform(0, 255, 3) for _ in range(int(rng.integers(2, 5)))]
    stops = np.linspace(0, 1, len(colours))
    return np.stack([np.interp(t, stops, [c[k] for c in colours]) for k in range(3)], -1)


class WideSceneGenerator(DigitSceneGenerator):
    """:class:`DigitSceneGenerator` whose varied scenes also draw procedural textures, inked and
    outlined digits and blurred scenes (see the module docstring)."""

    def clutter(self, height: int, width: int) -> np.ndarray:
        """Half the time the parent's shape clutter, else one of the six textures."""
        if self.rng.random() < 0.5:
            return super().clutter(height, width)
        textures: List[Callable[[int, int], np.ndarray]] = [
            self._noise, self._plaid, self._dots, self._tiles, self._curves, self._contours]
        out = textures[int(self.rng.integers(len(textures)))](height, width)
        return np.clip(out, 0, 255).round().astype(np.uint8)

    def _noise(self, h: int, w: int) -> np.ndarray:
        return colour_ramp(self.rng, value_noise(self.rng, h, w, int(self.rng.integers(1, 5))))

    def _plaid(self, h: int, w: int) -> np.ndarray:
        rng = self.rng
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, np.pi)
        u = xx * np.cos(ang) + yy * np.sin(ang)
        v = -xx * np.sin(ang) + yy * np.cos(ang)
        out = np.broadcast_to(rng.uniform(0, 255, 3), (h, w, 3)).astype(np.float32)
        for coord in (u, v):
            period = rng.uniform(6, 40)
            band = (coord % period) < period * rng.uniform(0.15, 0.6)
            a = rng.uniform(0.4, 1.0)
            out = np.where(band[..., None], out * (1 - a) + rng.uniform(0, 255, 3) * a, out)
        return out

    def _dots(self, h: int, w: int) -> np.ndarray:
        rng = self.rng
        img = Image.fromarray(np.broadcast_to(rng.uniform(0, 255, 3), (h, w, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        step = rng.uniform(6, 30)
        jitter = rng.uniform(0, 0.5)
        for y in np.arange(0, h + step, step):
            for x in np.arange(0, w + step, step):
                r = step * rng.uniform(0.15, 0.45)
                cx, cy = x + rng.normal(0, jitter * step), y + rng.normal(0, jitter * step)
                draw.ellipse([cx - r, cy - r, cx + r, cy + r],
                             fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        return np.asarray(img, np.float32)

    def _tiles(self, h: int, w: int) -> np.ndarray:
        rng = self.rng
        th, tw = rng.uniform(6, 40, 2)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        rows = (yy // th).astype(int)
        offset = (rows % 2) * tw * rng.choice([0.0, 0.5])  # square or running bond
        cols = ((xx + offset) // tw).astype(int)
        palette = rng.uniform(0, 255, (int(rng.integers(2, 7)), 3))
        tile_colour = palette[(rows * 7 + cols * 13) % len(palette)]
        grout = rng.uniform(0, 3)
        edge = ((yy % th) < grout) | (((xx + offset) % tw) < grout)
        return np.where(edge[..., None], rng.uniform(0, 255, 3), tile_colour)

    def _curves(self, h: int, w: int) -> np.ndarray:
        rng = self.rng
        img = Image.fromarray(colour_ramp(rng, value_noise(rng, h, w, 1)).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        t = np.linspace(0, 1, 60)
        for _ in range(int(rng.integers(3, 25))):
            # a sum of two random sinusoids along a random line: smooth and stroke-like
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            ang = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(0.3, 1.5) * max(h, w)
            bend = sum(rng.uniform(-0.3, 0.3) * length * np.sin(2 * np.pi * rng.uniform(0.3, 2)
                                                                * t + rng.uniform(0, 6.3))
                       for _ in range(2))
            xs = x0 + np.cos(ang) * length * t - np.sin(ang) * bend
            ys = y0 + np.sin(ang) * length * t + np.cos(ang) * bend
            draw.line(list(zip(xs.tolist(), ys.tolist())),
                      fill=tuple(int(c) for c in rng.integers(0, 256, 3)),
                      width=int(rng.integers(1, 7)))
        return np.asarray(img, np.float32)

    def _contours(self, h: int, w: int) -> np.ndarray:
        """Contour lines of value noise: 3-14 levels, lines 1-9 px wide."""
        rng = self.rng
        level = np.floor(value_noise(rng, h, w, int(rng.integers(1, 4)))
                         * int(rng.integers(3, 15))).astype(np.int16)
        edge = np.zeros((h, w), bool)
        edge[:-1] |= level[:-1] != level[1:]
        edge[:, :-1] |= level[:, :-1] != level[:, 1:]
        width = int(rng.integers(1, 10))
        if width > 1:
            grown = Image.fromarray(edge.astype(np.uint8) * 255).filter(
                ImageFilter.MaxFilter(width | 1))
            edge = np.asarray(grown) > 0
        base = (colour_ramp(rng, level / max(int(level.max()), 1)) if rng.random() < 0.5
                else np.broadcast_to(rng.uniform(0, 255, 3), (h, w, 3)))
        return np.where(edge[..., None], rng.uniform(0, 255, 3), base)

    def varied_ink(self, region: np.ndarray, alpha: np.ndarray
                   ) -> Tuple[np.ndarray, np.ndarray]:
        """An outline on :data:`OUTLINE_SHARE` of the digits, then an ink of one colour, a
        two-colour gradient or colour-mapped noise, each colour at a random distance from the
        background under the digit."""
        under = region[alpha > BOX_THRESHOLD]
        size = alpha.shape[0]
        if self.rng.random() < OUTLINE_SHARE:
            mask = Image.fromarray((alpha * 255).round().astype(np.uint8))
            ring = np.asarray(mask.filter(ImageFilter.MaxFilter(3 if size < 60 else 5)),
                              np.float32)[..., None] / 255.0
            region = region * (1 - ring) + self._free_colour(under) * ring
        kind = int(self.rng.integers(3))
        if kind == 0:
            return region, self._free_colour(under)
        c0, c1 = self._free_colour(under), self._free_colour(under)
        if kind == 1:
            return region, linear_gradient(self.rng, size, size, c0, c1)
        return region, colour_ramp(self.rng, value_noise(self.rng, size, size, 2), [c0, c1])

    def varied_classification_scene(self, *args, **kwargs) -> Scene:
        """The parent's varied scene, blurred (radius 0.1-2.5 px) on :data:`BLUR_SHARE`."""
        sc = super().varied_classification_scene(*args, **kwargs)
        if self.rng.random() < BLUR_SHARE:
            sc.image = np.asarray(Image.fromarray(sc.image).filter(
                ImageFilter.GaussianBlur(float(self.rng.uniform(0.1, 2.5)))))
        return sc


def main(argv: Optional[Tuple[str, ...]] = None) -> None:
    parser = argparse.ArgumentParser(description='Write a training split of the wider scenes.')
    parser.add_argument('root', help='folder for train/*.png, train.txt and classes.txt')
    parser.add_argument('count', type=int)
    parser.add_argument('--seed', type=int, default=5)
    parser.add_argument('--varied', type=float, default=0.8,
                        help='share of varied scenes (the rest are 96 px photo scenes)')
    args = parser.parse_args(argv)
    ann = write_classification(args.root, 'train', args.count, args.seed, varied=args.varied,
                               generator=WideSceneGenerator('train', args.seed))
    print(f'wrote {args.count} scenes: {ann}')


if __name__ == '__main__':
    main()
