"""Demo data: seeded digit scenes built from real MNIST digits and scikit-image photos, and a
second and a third generator (other backgrounds, colours and sizes) to test the classifiers on."""
from .digit_scenes import (CLASSES, PHOTOS, SPLITS, DigitSceneGenerator, Scene, coco_dict,
                           digit_splits, write_all)
from .other_scenes import OtherSceneGenerator
from .third_scenes import ThirdSceneGenerator

__all__ = ['CLASSES', 'PHOTOS', 'SPLITS', 'DigitSceneGenerator', 'Scene', 'coco_dict',
           'digit_splits', 'write_all', 'OtherSceneGenerator', 'ThirdSceneGenerator']
