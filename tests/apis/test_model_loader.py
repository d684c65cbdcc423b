"""Reading images as users see them, and loading models (mmcam.apis.model_loader)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from mmcam.apis import InputError, LoadedModel, read_image

REPO = Path(__file__).resolve().parents[2]


def _asymmetric() -> np.ndarray:
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:10, :20] = 255          # a white block top left
    arr[30:, 50:, 1] = 255       # a green block bottom right
    return arr


@pytest.mark.parametrize('orientation', range(1, 9))
@pytest.mark.parametrize('ext', ['.jpg', '.png'])
def test_exif_orientation_is_applied_as_viewers_do(tmp_path, orientation, ext):
    image = Image.fromarray(_asymmetric())
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f'photo{ext}'
    image.save(path, exif=exif, **({'quality': 100} if ext == '.jpg' else {}))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert('RGB'))
    got = read_image(str(path))[..., ::-1]  # BGR -> RGB
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).max() <= (0 if ext == '.png' else 8)


def test_a_rotated_photo_is_explained_upright(tmp_path):
    """The sample's image, the network input and the maps all follow the orientation the user
    sees: a 40 x 60 photo stored with orientation 6 (rotate 90 degrees) is 60 x 40."""
    image = Image.fromarray(_asymmetric())
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / 'turned.jpg'
    image.save(path, exif=exif, quality=100)
    loaded = LoadedModel(str(REPO / 'configs' / 'demo' / 'det_yolov5.py'),
                         str(REPO / 'demo' / 'checkpoints' / 'det_yolov5.pth'))
    sample = loaded.prepare([str(path)])[0]
    assert sample.image.shape[:2] == (60, 40)
    assert tuple(sample.data_sample.metainfo['ori_shape'][:2]) == (60, 40)


def test_loading_a_model_leaves_the_process_default_scope_as_it_was():
    """mmcam builds in the config's scope without changing the process-wide default scope, so
    another library's API used in the same process (mmpretrain's inferencer, say) finds it as
    it was."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        loaded = LoadedModel(str(REPO / 'configs' / 'demo' / 'det_yolov5.py'),
                             str(REPO / 'demo' / 'checkpoints' / 'det_yolov5.pth'))
        assert DefaultScope.get_current_instance().scope_name == 'mmpretrain'
        sample = loaded.prepare([str(REPO / 'demo' / 'digits_det.png')])[0]
        assert sample.inputs.shape[-2:] == (160, 160)
        assert DefaultScope.get_current_instance().scope_name == 'mmpretrain'


def test_a_truncated_png_is_reported_once_in_our_words(tmp_path, capfd):
    """libpng prints its own line straight to the process's stderr; mmcam's one-line reason
    replaces it."""
    import cv2
    import numpy as np

    from mmcam.apis.model_loader import read_image
    cv2.imwrite(str(tmp_path / 'whole.png'), np.random.default_rng(0).integers(
        0, 255, (60, 80, 3), dtype=np.uint8))
    data = (tmp_path / 'whole.png').read_bytes()
    (tmp_path / 'cut.png').write_bytes(data[:len(data) // 2])
    capfd.readouterr()
    with pytest.raises(InputError, match='truncated or corrupt PNG'):
        read_image(str(tmp_path / 'cut.png'))
    assert 'libpng' not in capfd.readouterr().err
