"""A second, independent digit-scene generator, to test the demo classifiers out of distribution.

:mod:`mmcam.datasets.digit_scenes` makes the scenes the demo classifiers are trained and tested
on. A model can score well on its own test split by learning that generator (its photos, its
colour rule, its digit sizes) instead of the digits, so this module draws single-digit scenes
with different choices everywhere except the MNIST digits themselves, which come from the
**test** part of the fixed digit split only (no training digit is ever drawn here).

What differs from the training generator (photo crops of 11 skimage photos or random clutter of
lines and shapes; a solid digit colour; 64-176 px scenes resized to 96; digits 25-85 % of the
side, bilinear upscaling):

- **size**: 224 x 224 scenes (the classifiers resize them to 96), digits 30-70 % of the side;
- **backgrounds**: procedural textures the training never draws (marble veins, Voronoi cells,
  concentric rings, colour-mapped blobs from ``skimage.data.binary_blobs``), or crops of
  scikit-image pictures that no split uses (``stereo_motorcycle``, ``logo``,
  ``shepp_logan_phantom``, ``microaneurysms``, ``horse``), the grey ones colour-mapped through two
  random colours of :data:`PALETTE`;
- **digit colour**: a linear gradient across the digit between two colours of a fixed
  :data:`PALETTE`, and on half of the digits an outline (1-3 px) in black or white;
- **digit shape**: upscaled with Lanczos instead of bilinear, and rotated by up to 12 degrees.

The box of a digit is the tight box of the pixels whose opacity (fill and outline) is above
:data:`~mmcam.datasets.digit_scenes.BOX_THRESHOLD`, as in the training generator, so
:func:`mmcam.cams.localisation.peak_in_box` applies to these scenes as it does to those.
The same seed gives the same scenes.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np
from PIL import Image, ImageFilter

from .digit_scenes import (BOX_THRESHOLD, PHOTOS, Scene, digit_splits, linear_gradient, mnist,
                           tight_box)

#: The fixed palette the digit gradients are drawn from (RGB).
PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (255, 255, 255), (20, 20, 20), (230, 40, 40), (255, 220, 0), (0, 200, 230), (40, 70, 230),
    (230, 0, 200), (255, 140, 0), (40, 200, 60), (150, 60, 220))
#: scikit-image pictures that none of the training generator's splits uses.
OTHER_PICTURES: Tuple[str, ...] = ('stereo_motorcycle', 'logo', 'shepp_logan_phantom',
                                   'microaneurysms', 'horse')
#: Procedural textures.
TEXTURES: Tuple[str, ...] = ('marble', 'voronoi', 'rings', 'blobs')
assert not set(OTHER_PICTURES) & {p for ps in PHOTOS.values() for p in ps}


@lru_cache(maxsize=None)
def picture(name: str) -> np.ndarray:
    """One of :data:`OTHER_PICTURES` as a float32 array: H x W x 3 (colour) or H x W (grey)."""
    import skimage.data
    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.float32) * 255
    img = img.astype(np.float32)
    if img.max() <= 1.0:
        img = img * 255
    if img.ndim == 3 and img.shape[2] == 4:  # logo: RGBA over white
        a = img[..., 3:] / 255.0
        img = img[..., :3] * a + 255.0 * (1 - a)
    if img.ndim == 3 and np.ptp(img, axis=2).max() < 1:  # colour in name only
        img = img[..., 0]
    return np.ascontiguousarray(img)


class OtherSceneGenerator:
    """Single-digit 224 x 224 scenes from a second generator (see the module docstring).

    Args:
        seed: scene seed; the same seed gives the same scenes.
        size: side of the square scenes in pixels.
        scale_range: digit (paste square) side as a fraction of the scene side.
        max_rotation: largest rotation of a digit, in degrees (either way).
    """

    def __init__(self, seed: int = 0, size: int = 224,
                 scale_range: Tuple[float, float] = (0.3, 0.7), max_rotation: float = 12.0
                 ) -> None:
        self.rng = np.random.default_rng([seed, 7919])
        self.size = size
        self.scale_range = scale_range
        self.max_rotation = max_rotation
        self.digits, self.labels = mnist()
        self.pool = digit_splits()['test']
        self._grid = np.mgrid[0:size, 0:size].astype(np.float32)

    # -- backgrounds -------------------------------------------------------------------------
    def _two_colours(self) -> np.ndarray:
        i, j = self.rng.choice(len(PALETTE), 2, replace=False)
        return np.array([PALETTE[i], PALETTE[j]], np.float32)

    def _map(self, t: np.ndarray) -> np.ndarray:
        """Colour-map ``t`` (0..1) through two palette colours, softened towards grey."""
        c = self._two_colours()
        c = c * 0.7 + 128 * 0.3
        return c[0] * (1 - t[..., None]) + c[1] * t[..., None]

    def _smooth_noise(self, cells: int) -> np.ndarray:
        small = self.rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
        big = Image.fromarray(small).resize((self.size, self.size), Image.BICUBIC)
        return np.asarray(big, np.float32) / 255.0

    def texture(self, kind: str) -> np.ndarray:
        """A procedural texture of :data:`TEXTURES` as an RGB float array."""
        yy, xx = self._grid
        s = self.size
        if kind == 'marble':
            turb = self._smooth_noise(4) + 0.5 * self._smooth_noise(9) + 0.25 * self._smooth_noise(
                19)
            ang = self.rng.uniform(0, np.pi)
            t = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) / s * self.rng.uniform(6, 16) +
                       turb * self.rng.uniform(4, 9))
            return self._map(np.abs(t) ** 0.5)
        if kind == 'voronoi':
            n = int(self.rng.integers(8, 30))
            pts = self.rng.uniform(0, s, (n, 2))
            d = (yy[None] - pts[:, 0, None, None]) ** 2 + (xx[None] - pts[:, 1, None, None]) ** 2
            nearest = d.argmin(0)
            colours = np.array(PALETTE, np.float32)[self.rng.integers(len(PALETTE), size=n)]
            colours = colours * self.rng.uniform(0.4, 0.8) + 128 * 0.4
            out = colours[nearest]
            part = np.sort(d, axis=0)
            edge = (np.sqrt(part[1]) - np.sqrt(part[0])) < 1.5
            out[edge] = 0.5 * out[edge]
            return out
        if kind == 'rings':
            cy, cx = self.rng.uniform(-0.5, 1.5, 2) * s
            r = np.hypot(yy - cy, xx - cx)
            return self._map(0.5 + 0.5 * np.sin(r / self.rng.uniform(3, 12)))
        if kind == 'blobs':
            import skimage.data
            blobs = skimage.data.binary_blobs(length=s, blob_size_fraction=float(
                self.rng.uniform(0.05, 0.2)), volume_fraction=0.5,
                rng=int(self.rng.integers(1 << 30)))
            soft = np.asarray(Image.fromarray(blobs.astype(np.uint8) * 255).filter(
                ImageFilter.GaussianBlur(2)), np.float32) / 255.0
            return self._map(soft)
        raise ValueError(f'Unknown texture {kind!r}: expected one of {TEXTURES}.')

    def picture_crop(self, name: str) -> np.ndarray:
        """A random square crop of one of :data:`OTHER_PICTURES`, colour-mapped if grey."""
        img = picture(name)
        h, w = img.shape[:2]
        side = int(min(h, w) * self.rng.uniform(0.4, 1.0))
        y0 = int(self.rng.integers(0, h - side + 1))
        x0 = int(self.rng.integers(0, w - side + 1))
        crop = img[y0:y0 + side, x0:x0 + side]
        if crop.ndim == 2:
            lo, hi = float(crop.min()), float(crop.max())
            crop = self._map((crop - lo) / max(hi - lo, 1e-6))
        crop = Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8))
        return np.asarray(crop.resize((self.size, self.size), Image.BICUBIC), np.float32)

    def background(self) -> Tuple[np.ndarray, str]:
        """A texture (half of the scenes) or a picture crop, with its name."""
        if self.rng.random() < 0.5:
            name = TEXTURES[self.rng.integers(len(TEXTURES))]
            return self.texture(name), name
        name = OTHER_PICTURES[self.rng.integers(len(OTHER_PICTURES))]
        return self.picture_crop(name), name

    # -- digits ------------------------------------------------------------------------------
    def _digit_alpha(self, digit_id: int, size: int) -> np.ndarray:
        mask = Image.fromarray((self.digits[digit_id] * 255).astype(np.uint8))
        mask = mask.resize((size, size), Image.LANCZOS)
        angle = float(self.rng.uniform(-self.max_rotation, self.max_rotation))
        mask = mask.rotate(angle, resample=Image.BICUBIC)
        return np.asarray(mask, np.float32) / 255.0

    def _fill(self, size: int, under: np.ndarray) -> np.ndarray:
        """A size x size linear gradient between two palette colours, apart from ``under``."""
        for _ in range(30):
            c = self._two_colours()
            if min(np.linalg.norm(c[0] - under), np.linalg.norm(c[1] - under)) >= 70:
                break
        return linear_gradient(self.rng, size, size, c[0], c[1])

    def scene(self) -> Scene:
        """One single-digit scene (image RGB uint8, one box, one label)."""
        image, name = self.background()
        s = self.size
        did = int(self.rng.choice(self.pool))
        size = int(round(s * self.rng.uniform(*self.scale_range)))
        x = int(self.rng.integers(0, s - size + 1))
        y = int(self.rng.integers(0, s - size + 1))
        alpha = self._digit_alpha(did, size)
        region = image[y:y + size, x:x + size]
        ink = alpha > BOX_THRESHOLD
        under = region[ink].mean(0) if ink.any() else region.reshape(-1, 3).mean(0)
        fill = self._fill(size, under)
        out_alpha = alpha
        if self.rng.random() < 0.5:  # an outline in black or white, whichever contrasts more
            width = int(self.rng.integers(1, 4))
            grown = np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).filter(
                ImageFilter.MaxFilter(2 * width + 1)), np.float32) / 255.0
            line = np.array((0, 0, 0) if fill.reshape(-1, 3).mean() > 110 else (255, 255, 255),
                            np.float32)
            g = grown[..., None]
            region = region * (1 - g) + line * g
            out_alpha = grown
        a = alpha[..., None]
        image[y:y + size, x:x + size] = region * (1 - a) + fill * a
        box = tight_box(out_alpha, x, y)[None]
        img = np.clip(image, 0, 255).round().astype(np.uint8)
        return Scene(img, box, np.array([int(self.labels[did])], np.int64), [did], name)


__all__ = ['OtherSceneGenerator', 'PALETTE', 'OTHER_PICTURES', 'TEXTURES', 'picture']
