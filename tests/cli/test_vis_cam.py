"""tools/vis_cam.py end to end: flags, outputs, folder runs and one-line errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _cam_models import make_checkpoint, small_config, write_photo

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'vis_cam.py'


def _tool():
    from mmcam.cli import vis_cam
    return vis_cam


@pytest.fixture(scope='module')
def tool():
    return _tool()


@pytest.fixture(scope='module')
def resnet(mmpretrain_configs, tmp_path_factory):
    """ResNet-18 config file (96 px crop) and its checkpoint, as files on disk."""
    folder = tmp_path_factory.mktemp('cli')
    cfg = small_config(mmpretrain_configs, 'resnet18', crop=96)
    cfg_path = folder / 'resnet18_small.py'
    cfg.dump(str(cfg_path))
    ckpt = make_checkpoint(cfg, folder / 'resnet18.pth')
    return str(cfg_path), ckpt


@pytest.fixture(scope='module')
def deit(mmpretrain_configs, tmp_path_factory):
    folder = tmp_path_factory.mktemp('cli_deit')
    cfg = small_config(mmpretrain_configs, 'deit_distilled', crop=64, img_size=64)
    cfg_path = folder / 'deit_small.py'
    cfg.dump(str(cfg_path))
    return str(cfg_path), make_checkpoint(cfg, folder / 'deit.pth')


def _run(tool, capsys, *argv):
    code = tool.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_single_image_picture_and_npy(tool, capsys, resnet, tmp_path):
    cfg, ckpt = resnet
    img = write_photo(tmp_path / 'cat.png', 90, 130)
    out = tmp_path / 'out' / 'cam.png'
    code, written, err = _run(tool, capsys, img, cfg, ckpt, '--save-path', out, '--save-cam',
                               '--method', 'GradCAM', 'eigencam', 'gradcam++')
    assert code == 0, err
    assert 'backbone.layer4.1.bn2' in err  # the default layer is reported (on stderr)
    assert 'map grid: 3x3 cells on a 96x96 network input (coarse' in err
    assert written.split()[0] == str(out) and len(written.split()) == 4  # picture, 3 maps
    import mmcv
    picture = mmcv.imread(str(out))
    assert picture is not None and picture.shape[1] >= 3 * 224  # three methods side by side
    for method in ('GradCAM', 'EigenCAM', 'GradCAMPlusPlus'):
        npy = tmp_path / 'out' / f'cam_{method}_{_predicted(err)}.npy'
        cam = np.load(npy)
        assert cam.shape == (90, 130) and cam.dtype == np.float32
        assert 0.0 <= cam.min() and cam.max() <= 1.0 and cam.max() > cam.min()
    assert not [p for p in os.listdir(tmp_path / 'out') if '.tmp' in p]  # atomic writes


def _predicted(messages: str) -> int:
    # "predicted class_3 (0.12)" -> 3
    word = messages.split('predicted ')[1].split()[0]
    return int(word.rsplit('_', 1)[1])


def test_save_cam_single_map_and_target_categories(tool, capsys, resnet, tmp_path):
    cfg, ckpt = resnet
    img = write_photo(tmp_path / 'cat.png', 100, 100)
    code, _, err = _run(tool, capsys, img, cfg, ckpt, '--save-path', tmp_path / 'c.npy')
    assert code == 0, err
    cam = np.load(tmp_path / 'c.npy')
    assert cam.shape == (100, 100) and cam.dtype == np.float32 and cam.max() <= 1.0
    assert not (tmp_path / 'c.png').exists()
    code, _, err = _run(tool, capsys, img, cfg, ckpt, '--save-path', tmp_path / 'two.png',
                        '--target-category', '1', 'class_4', '--save-cam', '--guided',
                        '--show-input', '--target-layers', 'backbone.layer4',
                        'backbone.layer3[-1]')
    assert code == 0, err
    assert (tmp_path / 'two_GradCAM_1.npy').exists() and (tmp_path / 'two_GradCAM_4.npy').exists()


def test_folder_run_skips_a_bad_file(tool, capsys, resnet, tmp_path):
    cfg, ckpt = resnet
    src = tmp_path / 'imgs'
    (src / 'sub').mkdir(parents=True)
    for i, (h, w) in enumerate([(80, 120), (120, 80), (64, 64)]):
        write_photo(src / ('sub' if i == 2 else '') / f'img{i}.png', h, w, x0=30 * i)
    (src / 'broken.png').write_bytes(b'not a png at all')
    (src / 'empty.png').write_bytes(b'')
    out = tmp_path / 'out'
    code, written, err = _run(tool, capsys, src, cfg, ckpt, '--out-dir', out, '--save-cam',
                              '--batch-size', '2')
    assert code == 1, err  # some inputs skipped
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob('*.png')) == [
        'img0.png', 'img1.png', 'sub/img2.png']
    assert np.load(out / 'sub' / 'img2.npy').shape == (64, 64)
    assert '2 skipped' in err and 'broken.png' in err and 'empty.png' in err
    assert len(written.split()) == 6  # 3 pictures and 3 maps, one path per line
    # A glob selects the same way.
    code, _, err = _run(tool, capsys, str(src / '*.png'), cfg, ckpt, '--out-dir',
                        tmp_path / 'glob')
    assert code == 1 and len(list((tmp_path / 'glob').glob('*.png'))) == 2


def test_vit_like_flags(tool, capsys, deit, tmp_path):
    cfg, ckpt = deit
    img = write_photo(tmp_path / 'cat.png', 100, 140)
    code, _, err = _run(tool, capsys, img, cfg, ckpt, '--vit-like', '--save-path',
                        tmp_path / 'deit.npy', '--target-layers', 'backbone.layers[-1].ln1')
    assert code == 0, err
    assert np.load(tmp_path / 'deit.npy').shape == (100, 140)
    code, _, err = _run(tool, capsys, img, cfg, ckpt, '--num-extra-tokens', '2', '--method',
                        'ablationcam', '--save-path', tmp_path / 'deit2.png')
    assert code == 0, err


def test_preview_model_lists_layers_with_shapes(tool, capsys, resnet, tmp_path):
    cfg, ckpt = resnet
    img = write_photo(tmp_path / 'cat.png', 96, 96)
    code, out, _ = _run(tool, capsys, img, cfg, ckpt, '--preview-model')
    assert code == 0
    assert 'backbone.layer4.1.bn2' in out and '1x512x3x3' in out


@pytest.mark.parametrize('case,extra,expected', [
    ('layer', ['--target-layers', 'backbone.layer9'], 'does not exist'),
    ('method', ['--method', 'GradCAMM'], 'is not a CAM method'),
    ('category', ['--target-category', '10'], 'out of range'),
    ('tokens', ['--num-extra-tokens', '0'], '--num-extra-tokens 0'),
    ('image', [], 'truncated or corrupt PNG'),
    ('empty', [], 'is empty (0 bytes)'),
    ('cfg-options', ['--cfg-options', "test_dataloader.dataset.pipeline=[dict(type='A',"
                     "b=1)]"], 'the options could not be parsed'),
    ('cfg-dict', ['--cfg-options', "test_dataloader.dataset.pipeline=[dict(type='A')]"],
     'a dict(...) value is read as a string'),
])
def test_errors_are_one_line_and_non_zero(tool, capsys, resnet, deit, tmp_path, case, extra,
                                          expected):
    cfg, ckpt = deit if case == 'tokens' else resnet
    img = tmp_path / 'x.png'
    if case == 'image':
        img.write_bytes(b'\x89PNG broken')
    elif case == 'empty':  # OpenCV asserts on 0 bytes instead of returning None
        img.write_bytes(b'')
    else:
        write_photo(img, 64, 64)
    code, _, err = _run(tool, capsys, img, cfg, ckpt, '--save-path', tmp_path / 'o.png', *extra)
    assert code == 2  # a user error, as argparse reports its own
    lines = [line for line in err.splitlines()  # the one error line, after the default device
             if line.strip() and not line.startswith(('device: ', 'target layer(s): ', 'hint: '))]
    assert len(lines) == 1 and lines[0].startswith('vis_cam: error:'), err
    assert expected in lines[0]
    assert 'Traceback' not in err


def test_cli_subprocess_exit_code_without_traceback(resnet, tmp_path):
    cfg, ckpt = resnet
    img = write_photo(tmp_path / 'cat.png', 64, 64)
    proc = subprocess.run([sys.executable, str(TOOL), img, cfg, ckpt, '--method', 'nope',
                           '--save-path', str(tmp_path / 'o.png')],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('vis_cam: error:')


def test_checkpoint_of_another_model_is_refused(tool, capsys, resnet, deit, tmp_path):
    """A checkpoint that shares no weight with the config's model must not explain random
    weights silently (mmengine only warns about the missing and unexpected keys)."""
    img = write_photo(tmp_path / 'x.png', 64, 64)
    code, _, err = _run(tool, capsys, img, resnet[0], deit[1], '--save-path', tmp_path / 'o.png')
    assert code != 0
    assert err.strip().splitlines()[-1].startswith('vis_cam: error: No weight in checkpoint')
    assert not (tmp_path / 'o.png').exists()


def test_a_map_that_is_zero_everywhere_is_explained(tool, capsys, tmp_path):
    """Demo ViT (class token): after its last attention block only the class token reaches the
    head, so the patch-token map there is blank, and the tool says why instead of leaving a
    blank picture unexplained; at the default layer it has nothing to say."""
    cfg, ckpt = REPO / 'configs' / 'demo' / 'cls_vit.py', REPO / 'demo' / 'checkpoints' / \
        'cls_vit.pth'
    img = REPO / 'demo' / 'digit.png'
    code, out, err = _run(tool, capsys, img, cfg, ckpt, '--target-layers',
                          'backbone.layers[-1].ln2', '--save-path', tmp_path / 'blank.npy')
    assert code == 0, err
    assert not np.load(tmp_path / 'blank.npy').any()
    assert 'map(s) are zero everywhere' in err and '--target-layers' in err
    code, out, err = _run(tool, capsys, img, cfg, ckpt, '--save-path', tmp_path / 'ok.npy')
    assert code == 0, err
    assert np.load(tmp_path / 'ok.npy').max() > 0 and 'zero everywhere' not in err
