"""Real OpenMMLab checkpoints load on torch >= 2.6 without unpickling arbitrary code."""
import fractions
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner, save_checkpoint

from conftest import folder_loader
from mmcam.apis import LoadedModel
from mmcam.utils import UNSAFE_ENV, UnsafeCheckpointError, load_checkpoint, load_checkpoint_file

RESNET18 = 'resnet/resnet18_8xb32_in1k.py'


def _resnet18(mmpretrain_configs) -> LoadedModel:
    return LoadedModel(str(mmpretrain_configs / RESNET18))


def _save_with_meta(model, path: Path, meta: dict) -> None:
    save_checkpoint({'state_dict': model.state_dict(), 'meta': meta}, str(path))


def test_checkpoint_with_numpy_and_mmengine_meta_loads(tmp_path, mmpretrain_configs):
    source = _resnet18(mmpretrain_configs).model
    buffer = HistoryBuffer()
    buffer.update(0.25)
    meta = {'epoch': np.int64(3), 'lr': np.float64(0.01), 'seed': np.uint32(7),
            'hist': np.arange(6, dtype=np.float32).reshape(2, 3), 'loss': buffer,
            'dataset_meta': {'classes': ('cat', 'dog')}}
    path = tmp_path / 'numpy_meta.pth'
    _save_with_meta(source, path, meta)

    target = _resnet18(mmpretrain_configs).model
    checkpoint = load_checkpoint(target, str(path))
    assert checkpoint['meta']['lr'] == pytest.approx(0.01)
    assert checkpoint['meta']['loss'].current() == pytest.approx(0.25)
    np.testing.assert_array_equal(checkpoint['meta']['hist'], meta['hist'])
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert torch.equal(a, b), name


def test_loaded_model_takes_classes_from_checkpoint_meta(tmp_path, mmpretrain_configs):
    source = _resnet18(mmpretrain_configs).model
    path = tmp_path / 'with_classes.pth'
    classes = tuple(f'class_{i}' for i in range(1000))
    _save_with_meta(source, path, {'dataset_meta': {'classes': classes}, 'step': np.int64(1)})
    loaded = LoadedModel(str(mmpretrain_configs / RESNET18), str(path))
    assert loaded.classes == classes


def test_checkpoint_written_by_a_runner_loads(tmp_path, mmpretrain_configs):
    """Train a shipped config for one tiny epoch; the Runner's checkpoint must load as is."""
    import cv2
    for label in ('a', 'b'):
        (tmp_path / 'data' / label).mkdir(parents=True)
        for i in range(2):
            image = np.full((32, 32, 3), 60 * i + (100 if label == 'a' else 0), np.uint8)
            cv2.imwrite(str(tmp_path / 'data' / label / f'{i}.png'), image)
    cfg = Config.fromfile(str(mmpretrain_configs / RESNET18))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.head.num_classes = 2
    cfg.model.head.topk = (1, )
    cfg.train_dataloader = folder_loader(tmp_path / 'data', [dict(type='Resize', scale=32)])
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.env_cfg = dict(dist_cfg=dict(backend='gloo'))
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    path = tmp_path / 'work' / 'epoch_1.pth'
    # torch's default (weights_only) loader, with the allow-list mmcam installs on import.
    raw = torch.load(str(path), map_location='cpu')
    assert isinstance(raw['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    target = LoadedModel(str(mmpretrain_configs / RESNET18),
                         cfg_options={'model.head.num_classes': 2}).model
    load_checkpoint(target, str(path))
    trained = runner.model.state_dict()
    for name, value in target.state_dict().items():
        assert torch.equal(value, trained[name]), name


def test_checkpoint_with_foreign_type_is_refused_with_the_opt_in_named(tmp_path, monkeypatch):
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    path = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {}, 'meta': {'ratio': fractions.Fraction(1, 3)}}, str(path))
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(str(path))
    message = str(info.value)
    assert 'fractions.Fraction' in message
    assert '--allow-unsafe-checkpoint' in message and UNSAFE_ENV in message
    # The explicit opt-ins load it.
    assert load_checkpoint_file(str(path), allow_unsafe=True)['meta']['ratio'] == fractions.Fraction(1, 3)
    monkeypatch.setenv(UNSAFE_ENV, '1')
    assert load_checkpoint_file(str(path))['meta']['ratio'] == fractions.Fraction(1, 3)


def test_missing_checkpoint_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


class _RunsCode:
    """An object whose unpickling would run a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f'touch {self.marker}', )


def test_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': {'x': _RunsCode(marker)}}, str(path))
    with pytest.raises(UnsafeCheckpointError, match=r'posix\.system|os\.system'):
        load_checkpoint_file(str(path))
    assert not marker.exists()


@pytest.mark.parametrize('content', ['truncated', 'text'])
def test_a_truncated_or_foreign_file_is_a_one_line_user_error(tmp_path, capsys, content):
    from mmcam.cli import vis_cam
    repo = Path(__file__).resolve().parents[2]
    whole = (repo / 'demo' / 'checkpoints' / 'cls_resnet.pth').read_bytes()
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(whole[:len(whole) // 3] if content == 'truncated' else b'just text\n')
    code = vis_cam.main([str(repo / 'demo' / 'digit.png'), str(repo / 'configs' / 'demo' /
                        'cls_resnet.py'), str(bad), '--save-path', str(tmp_path / 'o.png')])
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and not line.startswith('device: ')]
    assert code == 2 and len(err) == 1, err
    assert 'is truncated or not a checkpoint' in err[0] and 'download or copy it again' in err[0]


def test_a_partly_fitting_checkpoint_is_said_in_one_warning(tmp_path):
    import warnings

    import torch
    repo = Path(__file__).resolve().parents[2]
    config = str(repo / 'configs' / 'demo' / 'cls_resnet.py')
    ckpt = torch.load(str(repo / 'demo' / 'checkpoints' / 'cls_resnet.pth'),
                      weights_only=False)
    state = ckpt['state_dict']
    del state['head.fc.weight']
    state['extra.weight'] = torch.zeros(1)
    torch.save(ckpt, str(tmp_path / 'part.pth'))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        LoadedModel(config, str(tmp_path / 'part.pth'))
    messages = [str(w.message) for w in caught if 'does not fully fit' in str(w.message)]
    assert len(messages) == 1, [str(w.message) for w in caught]
    assert '1 of 122 weights (e.g. head.fc.weight) of the model missing' in messages[0]
    assert '1 of 122 weights (e.g. extra.weight) of the checkpoint unused' in messages[0]


def test_a_safetensors_checkpoint_loads(tmp_path):
    import torch
    from safetensors.torch import save_file
    repo = Path(__file__).resolve().parents[2]
    config = str(repo / 'configs' / 'demo' / 'cls_resnet.py')
    pth = str(repo / 'demo' / 'checkpoints' / 'cls_resnet.pth')
    state = torch.load(pth, weights_only=False)['state_dict']
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / 'w.safetensors'))
    a, b = LoadedModel(config, pth), LoadedModel(config, str(tmp_path / 'w.safetensors'))
    inputs = a.prepare([str(repo / 'demo' / 'digit.png')])[0].inputs
    with torch.no_grad():
        torch.testing.assert_close(a.model(inputs, mode='tensor'), b.model(inputs, mode='tensor'))
    (tmp_path / 'cut.safetensors').write_bytes((tmp_path / 'w.safetensors').read_bytes()[:999])
    with pytest.raises(Exception, match='is truncated or not a checkpoint'):
        LoadedModel(config, str(tmp_path / 'cut.safetensors'))
