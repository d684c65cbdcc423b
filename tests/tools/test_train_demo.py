"""tools/train_demo.py's plan: the two steps of the classifiers and of the 320 px detectors, as
mmengine reads the options.

Training itself takes tens of minutes per model and is not run here; these checks make sure the
second step starts from the first step's checkpoint with the config's fine-tuning settings.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config, DictAction

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def train_demo(load_tool):
    return load_tool('train_demo')


class _Namespace(dict):
    def __setattr__(self, key, value):
        self[key] = value

    def __getattr__(self, key):
        return self.get(key)


@pytest.mark.parametrize('name', ['cls_resnet', 'cls_vit'])
def test_classifiers_train_from_scratch_on_plain_scenes_then_fine_tune(train_demo, tmp_path,
                                                                       name):
    plan = train_demo.steps(name, str(tmp_path))
    assert [d for d, _ in plan] == [str(tmp_path / 'scratch'), str(tmp_path)]
    first = _merged_options(name, plan[0][1])
    assert first.train_dataloader.dataset.data_root == f'{train_demo.PLAIN_ROOT}/cls/'
    # the first step's last checkpoint, as train() resolves it
    (tmp_path / 'scratch').mkdir()
    (tmp_path / 'scratch' / 'last_checkpoint').write_text(str(tmp_path / 'epoch_36.pth\n'))
    options = [train_demo._resolved(o) for o in plan[1][1]]
    second = _merged_options(name, options)
    fine_tune = Config.fromfile(str(REPO / 'configs' / 'demo' / f'{name}.py')).fine_tune
    assert second.load_from == str(tmp_path / 'epoch_36.pth')
    assert second.train_cfg.max_epochs == fine_tune['epochs']
    assert second.optim_wrapper.optimizer.lr == pytest.approx(fine_tune['lr'])
    assert second.param_scheduler[0].end == fine_tune['warmup_iters']
    assert second.param_scheduler[1].T_max == second.param_scheduler[1].end == fine_tune['epochs']
    assert second.train_dataloader.dataset.data_root == 'data/digit_scenes/cls/'


def test_detectors_train_in_one_step(train_demo, tmp_path):
    assert train_demo.steps('det_yolov5', str(tmp_path)) == [(str(tmp_path), [])]


@pytest.mark.parametrize('name', ['det_rtmdet', 'det_yolox', 'det_yolov6'])
def test_large_input_detectors_train_at_the_first_scale_then_at_their_own(train_demo, tmp_path,
                                                                          name):
    plan = train_demo.steps(name, str(tmp_path))
    fine_tune = Config.fromfile(str(REPO / 'configs' / 'demo' / f'{name}.py')).fine_tune
    first = _merged_options(name, plan[0][1])
    (tmp_path / 'scratch').mkdir()
    (tmp_path / 'scratch' / 'last_checkpoint').write_text(str(tmp_path / 'epoch_60.pth\n'))
    second = _merged_options(name, [train_demo._resolved(o) for o in plan[1][1]])
    for cfg, scale in ((first, tuple(fine_tune['first_scale'])), (second, (320, 320))):
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            scales = [tuple(step['scale']) for step in cfg[loader].dataset.pipeline
                      if 'scale' in step]
            assert scales == [scale, scale], (loader, scales)
    assert second.load_from == str(tmp_path / 'epoch_60.pth')
    assert second.train_cfg.max_epochs == fine_tune['epochs']


def _merged_options(name: str, options) -> Config:
    """The config after ``--cfg-options`` as mmengine's DictAction parses them."""
    namespace = _Namespace()
    DictAction(option_strings=['--cfg-options'], dest='cfg_options', nargs='+')(
        None, namespace, list(options))
    cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / f'{name}.py'))
    cfg.merge_from_dict(namespace['cfg_options'])
    return cfg
