"""Re-make the picture of docs/{en,zh_cn}/demo_models.md that shows the scene generators:

    python docs/_static/demo_models/make_pictures.py

One row per generator, eight scenes each, all drawn from the test digits: the own test split
(seed 0, the scenes of data/digit_scenes/cls/test), the training generator's varied scenes of
the test split (seed 9, as tools/eval_generalisation.py draws them), the second generator and
the third generator (seed 0). Every scene is shown at 128 x 128.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mmcam.datasets import DigitSceneGenerator, OtherSceneGenerator, ThirdSceneGenerator

OUT = Path(__file__).resolve().parent / 'generators.png'
TILE, PER_ROW, LABEL = 128, 8, 170


def rows():
    own = DigitSceneGenerator('test', seed=0)
    varied = DigitSceneGenerator('test', seed=9)
    second, third = OtherSceneGenerator(0), ThirdSceneGenerator(0)
    yield 'own test split', [own.classification_scene(96) for _ in range(PER_ROW)]
    yield 'own varied', [varied.varied_classification_scene() for _ in range(PER_ROW)]
    yield 'second generator', [second.scene() for _ in range(PER_ROW)]
    yield 'third generator', [third.scene() for _ in range(PER_ROW)]


def main() -> None:
    made = list(rows())
    sheet = Image.new('RGB', (LABEL + TILE * PER_ROW, TILE * len(made)), 'white')
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=18)
    for r, (name, scenes) in enumerate(made):
        draw.text((8, r * TILE + TILE // 2 - 10), name, fill='black', font=font)
        for c, sc in enumerate(scenes):
            tile = Image.fromarray(np.ascontiguousarray(sc.image)).resize((TILE, TILE),
                                                                          Image.BILINEAR)
            sheet.paste(tile, (LABEL + c * TILE, r * TILE))
    sheet.quantize(256).save(OUT, optimize=True)
    print(f'written {OUT} ({OUT.stat().st_size // 1024} KB)')


if __name__ == '__main__':
    main()
