"""The HTML report of tools/eval_cam.py in a real headless Chromium (system package)."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from _browser import Browser, chromium_path
from mmcam.evaluation.digit_data import write_classification_with_boxes
from mmcam.evaluation.tool import main

REPO = Path(__file__).resolve().parents[2]
METHODS = ['GradCAM', 'LayerCAM', 'EigenCAM']

pytestmark = pytest.mark.skipif(
    chromium_path() is None,
    reason='Chromium is not installed; scripts/setup.sh installs the Debian package (as root, '
           'with apt-get); install it with: apt-get install -y chromium')


@pytest.fixture(scope='module')
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('report')
    write_classification_with_boxes(str(root / 'data'), 'test', 6, seed=1)
    code = main([str(REPO / 'configs/demo/cls_resnet.py'),
                 str(REPO / 'demo/checkpoints/cls_resnet.pth'),
                 '--methods', *METHODS, '--target-layers', 'backbone.layer4',
                 '--metrics', 'localisation', 'deletion', 'confidence', 'sanity',
                 '--work-dir', str(root / 'out'), '--cfg-options',
                 f'test_dataloader.dataset.data_root={root / "data"}/'])
    assert code == 0
    return root / 'out' / 'report'


def test_report_loads_in_chromium_without_errors(report):
    with Browser() as browser:
        browser.open((report / 'index.html').as_uri())
        rows = browser.evaluate("Array.from(document.querySelectorAll('#summary tbody tr'))"
                                ".map(r => r.cells[0].textContent)")
        assert rows == METHODS
        images = browser.evaluate("Array.from(document.images).map(i => [i.src, i.complete "
                                  "&& i.naturalWidth > 0])")
        assert len(images) >= 2 * 2 * len(METHODS)  # best and worst: image + map each
        assert all(ok for _, ok in images), [src for src, ok in images if not ok]
        # The table sorts when a column header is clicked (twice: both directions).
        order = "Array.from(document.querySelectorAll('#summary tbody tr'))" \
                ".map(r => r.cells[0].textContent).join()"
        browser.evaluate("document.querySelectorAll('#summary th')[0].click()")
        first = browser.evaluate(order)
        browser.evaluate("document.querySelectorAll('#summary th')[0].click()")
        assert browser.evaluate(order) == ','.join(sorted(METHODS, reverse=True))
        assert first == ','.join(sorted(METHODS))
        png = browser.screenshot()
        # One page per image, linked from the gallery.
        link = browser.evaluate("document.querySelector('.gallery a').href")
        browser.open(link)
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && "
                                "i.naturalWidth > 0)")
        assert browser.evaluate('document.images.length') == 1 + len(METHODS)
        assert browser.errors == []
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape[1] == 1280
    assert picture.std() > 10 and len(np.unique(picture.reshape(-1, 3), axis=0)) > 50
    target = os.environ.get('MMCAM_EVAL_SCREENSHOT')  # docs/_static/eval/report.png
    if target:
        Path(target).write_bytes(png)
