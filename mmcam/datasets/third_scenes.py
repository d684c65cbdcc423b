"""A third digit-scene generator. Once a training generator has been changed in the light of
the second generator's errors (:mod:`mmcam.datasets.other_scenes`), a figure on the second one
is no longer a blind test; a figure on this one stays one.

Only the MNIST **test** digits are drawn, as in :mod:`mmcam.datasets.other_scenes`. Choices that
neither the training nor the second generator makes:

- **size**: 256 x 256 scenes, digits 22-60 % of the side, squeezed or stretched in width
  (0.8-1.2), rotated by up to 15 degrees, made bolder or thinner (a 3 x 3 max or min filter) on
  a third of them;
- **backgrounds** (a fifth each): crops of pictures from other packages (scikit-learn's
  ``china`` and ``flower``, matplotlib's ``grace_hopper`` and ``Minduka_Present_Blue_Pack``, the
  ``jacksboro_fault_dem`` elevation through a matplotlib colour map); lines of random letters in
  PIL's font; hand-drawn-looking scribbles (quadratic Bezier strokes at digit stroke width);
  a hexagon lattice; a plasma of summed random plane waves through a matplotlib colour map;
- **digit ink**: a colour from a matplotlib colour map at least 80 (RGB) apart from three
  quarters of the background pixels under it (the best of 40 draws otherwise); plain, with a
  soft drop shadow, or defocused (Gaussian blur);
- **the whole scene**: JPEG-compressed (quality 25-75) half of the time, Gaussian noise on a
  third.

Boxes are the tight box of the ink above
:data:`~mmcam.datasets.digit_scenes.BOX_THRESHOLD` (shadows excluded).
"""
from __future__ import annotations

import io
from functools import lru_cache
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .digit_scenes import BOX_THRESHOLD, Scene, digit_splits, mnist, tight_box

THIRD_PICTURES: Tuple[str, ...] = ('china', 'flower', 'grace_hopper', 'present', 'dem')
KINDS: Tuple[str, ...] = ('picture', 'letters', 'scribbles', 'hexagons', 'plasma')
CMAPS: Tuple[str, ...] = ('viridis', 'plasma', 'cividis', 'twilight', 'turbo', 'Spectral',
                          'cubehelix', 'terrain')


@lru_cache(maxsize=None)
def third_picture(name: str) -> np.ndarray:
    """One of :data:`THIRD_PICTURES` as an H x W x 3 float32 RGB array."""
    import matplotlib
    from matplotlib import cbook
    if name in ('china', 'flower'):
        from sklearn.datasets import load_sample_image
        return load_sample_image(f'{name}.jpg').astype(np.float32)
    if name == 'grace_hopper':
        return np.asarray(Image.open(cbook.get_sample_data('grace_hopper.jpg')).convert('RGB'),
                          np.float32)
    if name == 'present':
        return np.asarray(Image.open(cbook.get_sample_data(
            'Minduka_Present_Blue_Pack.png')).convert('RGB'), np.float32)
    if name == 'dem':
        z = np.asarray(cbook.get_sample_data('jacksboro_fault_dem.npz')['elevation'], np.float32)
        z = (z - z.min()) / max(float(np.ptp(z)), 1e-6)
        return matplotlib.colormaps['gist_earth'](z)[..., :3].astype(np.float32) * 255
    raise ValueError(f'Unknown picture {name!r}: expected one of {THIRD_PICTURES}.')


class ThirdSceneGenerator:
    """Single-digit 256 x 256 scenes from a third generator (see the module docstring)."""

    def __init__(self, seed: int = 0, size: int = 256) -> None:
        self.rng = np.random.default_rng([seed, 104729])
        self.size = size
        self.digits, self.labels = mnist()
        self.pool = digit_splits()['test']

    def _cmap(self, t: np.ndarray) -> np.ndarray:
        import matplotlib
        cmap = matplotlib.colormaps[CMAPS[self.rng.integers(len(CMAPS))]]
        return np.asarray(cmap(np.clip(t, 0, 1)), np.float32)[..., :3] * 255

    def _colour(self) -> Tuple[int, int, int]:
        return tuple(int(v) for v in self.rng.integers(0, 256, 3))

    def background(self) -> Tuple[np.ndarray, str]:
        rng, s = self.rng, self.size
        kind = KINDS[rng.integers(len(KINDS))]
        if kind == 'picture':
            name = THIRD_PICTURES[rng.integers(len(THIRD_PICTURES))]
            img = third_picture(name)
            h, w = img.shape[:2]
            side = int(min(h, w) * rng.uniform(0.3, 1.0))
            y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(img[y0:y0 + side, x0:x0 + side].astype(np.uint8))
            return np.asarray(crop.resize((s, s), Image.BILINEAR), np.float32), name
        if kind == 'plasma':
            yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
            t = np.zeros((s, s), np.float32)
            for _ in range(int(rng.integers(3, 7))):
                ang, freq, ph = rng.uniform(0, np.pi), rng.uniform(1, 6), rng.uniform(0, 6.3)
                t += np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * freq * 2 * np.pi + ph)
            t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
            return self._cmap(t), kind
        img = Image.new('RGB', (s, s), self._colour())
        draw = ImageDraw.Draw(img)
        if kind == 'letters':
            size = int(rng.integers(10, 40))
            font = ImageFont.load_default(size=size)
            letters = 'ABCDEFGHJKLMNPRSTUVWXYZabcdefghijkmnpqrstuvwxyz'
            y = float(rng.uniform(-size, 0))
            while y < s:
                line = ''.join(letters[i] for i in rng.integers(len(letters), size=60))
                draw.text((float(rng.uniform(-size * 3, 0)), y), line, fill=self._colour(),
                          font=font)
                y += size * rng.uniform(1.0, 1.6)
        elif kind == 'scribbles':
            for _ in range(int(rng.integers(4, 14))):
                p0, p1, p2 = rng.uniform(-0.1, 1.1, (3, 2)) * s
                t = np.linspace(0, 1, 30)[:, None]
                pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
                width = int(rng.integers(2, 12))
                draw.line([tuple(p) for p in pts.tolist()], fill=self._colour(), width=width,
                          joint='curve')
        else:  # hexagons: a lattice of outlined hexagons, filled or not
            r = float(rng.uniform(8, 36))
            line, fill = self._colour(), self._colour() if rng.random() < 0.5 else None
            for row, cy in enumerate(np.arange(-r, s + r, r * 1.5)):
                for cx in np.arange(-r, s + r, r * np.sqrt(3)):
                    cx = cx + (r * np.sqrt(3) / 2 if row % 2 else 0)
                    draw.regular_polygon((float(cx), float(cy), r), 6, fill=fill, outline=line,
                                         width=int(rng.integers(1, 4)))
        return np.asarray(img, np.float32), kind

    def _alpha(self, digit_id: int, size: int) -> np.ndarray:
        rng = self.rng
        mask = Image.fromarray((self.digits[digit_id] * 255).astype(np.uint8))
        w = max(8, int(round(size * rng.uniform(0.8, 1.2))))
        mask = mask.resize((min(w, size), size), Image.BICUBIC)
        canvas = Image.new('L', (size, size), 0)
        canvas.paste(mask, ((size - mask.width) // 2, 0))
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
        weight = rng.random()
        if weight < 1 / 6:
            canvas = canvas.filter(ImageFilter.MaxFilter(3))
        elif weight < 1 / 3:
            canvas = canvas.filter(ImageFilter.MinFilter(3))
        return np.asarray(canvas, np.float32) / 255.0

    def scene(self) -> Scene:
        """One single-digit scene (image RGB uint8, one box, one label)."""
        rng, s = self.rng, self.size
        image, name = self.background()
        did = int(rng.choice(self.pool))
        size = int(round(s * rng.uniform(0.22, 0.6)))
        x, y = int(rng.integers(0, s - size + 1)), int(rng.integers(0, s - size + 1))
        alpha = self._alpha(did, size)
        region = image[y:y + size, x:x + size]
        ink = alpha > BOX_THRESHOLD
        under = region[ink] if ink.any() else region.reshape(-1, 3)
        best, colour = -1.0, None
        for _ in range(40):  # legible: far from most of the background pixels under the ink
            c = self._cmap(np.array(rng.uniform()))
            score = float(np.percentile(np.linalg.norm(under - c, axis=1), 25))
            if score > best:
                best, colour = score, c
            if score >= 80:
                break
        style = rng.random()
        if style < 0.25:  # a soft drop shadow under the digit
            dx, dy = rng.integers(2, 7, 2)
            shadow = np.roll(alpha, (int(dy), int(dx)), axis=(0, 1))
            shadow = np.asarray(Image.fromarray((shadow * 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(2)), np.float32)[..., None] / 255.0 * 0.6
            region = region * (1 - shadow)
        paint = alpha
        if 0.25 <= style < 0.5:  # defocused ink (the box stays the sharp digit's)
            paint = np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(float(rng.uniform(1, 2.5)))), np.float32) / 255.0
        a = paint[..., None]
        image[y:y + size, x:x + size] = region * (1 - a) + colour * a
        box = tight_box(alpha, x, y)[None]
        if rng.random() < 1 / 3:
            image = image + rng.normal(0, rng.uniform(3, 10), image.shape)
        img = np.clip(image, 0, 255).round().astype(np.uint8)
        if rng.random() < 0.5:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, 'JPEG', quality=int(rng.integers(25, 76)))
            img = np.asarray(Image.open(buf).convert('RGB'))
        return Scene(img, box, np.array([int(self.labels[did])], np.int64), [did], name)


__all__ = ['ThirdSceneGenerator', 'THIRD_PICTURES', 'KINDS']
