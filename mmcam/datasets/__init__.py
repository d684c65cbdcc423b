"""Demo data: seeded digit scenes built from real MNIST digits and scikit-image photos."""
from .digit_scenes import (CLASSES, PHOTOS, SPLITS, DigitSceneGenerator, Scene, coco_dict,
                           digit_splits, write_all)

__all__ = ['CLASSES', 'PHOTOS', 'SPLITS', 'DigitSceneGenerator', 'Scene', 'coco_dict',
           'digit_splits', 'write_all']
