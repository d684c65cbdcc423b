"""One command-line behaviour for the three tools (mmcam/cli): the same cases through each.

Exit status 0 / 1 / 2, output names that never collide, messages on stderr and the written
files on stdout, the --device default said in one line, one --preview-model table, --show
without a display. Real demo models and real photographs.
"""
from __future__ import annotations

from pathlib import Path

import mmcv
import pytest

from mmcam.cli import boxam, featmap, vis_cam

REPO = Path(__file__).resolve().parents[2]
CLS = (REPO / 'configs' / 'demo' / 'cls_resnet.py', REPO / 'demo' / 'checkpoints' /
       'cls_resnet.pth')
DET = (REPO / 'configs' / 'demo' / 'det_yolov5.py', REPO / 'demo' / 'checkpoints' /
       'det_yolov5.pth')
#: tool -> (its main, the model it explains, extra options)
TOOLS = {
    'vis_cam': (vis_cam.main, CLS, []),
    'featmap': (featmap.main, CLS, ['--target-layers', 'backbone.layer4']),
    'boxam': (boxam.main, DET, []),
}


@pytest.fixture(scope='module')
def inputs(tmp_path_factory) -> Path:
    """a/x.png and b/x.png (one stem in two folders), x.jpg and x.png (one stem, one folder),
    and a file that is not an image."""
    from skimage import data
    root = tmp_path_factory.mktemp('cli_inputs')
    photos = [mmcv.imresize(mmcv.rgb2bgr(getattr(data, name)()), (120, 90))
              for name in ('chelsea', 'coffee', 'astronaut', 'rocket')]
    for photo, rel in zip(photos, ('a/x.png', 'b/x.png', 'x.jpg', 'x.png')):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        mmcv.imwrite(photo, str(root / rel))
    (root / 'broken.png').write_bytes(b'not an image')
    return root


def _run(tool: str, capsys, *args):
    main, (config, checkpoint), extra = TOOLS[tool]
    code = main([str(a) for a in (args[0], config, checkpoint, *args[1:], *extra)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize('tool', TOOLS)
def test_folder_names_exit_status_and_streams(tool, inputs, tmp_path, capsys):
    out = tmp_path / 'out'
    code, stdout, stderr = _run(tool, capsys, inputs, '--out-dir', out)
    assert code == 1, stderr  # one input skipped
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob('*.png'))
    assert names == ['a/x.png', 'b/x.png', 'x_jpg.png', 'x_png.png'], names
    # stdout: exactly the written files; stderr: the device, the skip and the summary.
    assert sorted(stdout.split()) == sorted(str(out / n) for n in names)
    assert 'device: cpu' in stderr
    assert f'skipped {inputs / "broken.png"}' in stderr
    assert '4 of 5 images done, 4 files written' in stderr and '1 skipped' in stderr


@pytest.mark.parametrize('tool', TOOLS)
def test_nothing_done_is_exit_2_and_everything_done_is_0(tool, inputs, tmp_path, capsys):
    code, stdout, stderr = _run(tool, capsys, inputs / 'broken.png', '--out-dir', tmp_path / 'a')
    assert code == 2 and stdout == '' and 'broken.png' in stderr
    code, stdout, stderr = _run(tool, capsys, inputs / 'a', '--out-dir', tmp_path / 'b')
    assert code == 0, stderr
    assert stdout.split() == [str(tmp_path / 'b' / 'x.png')]
    code, _, stderr = _run(tool, capsys, inputs / 'nothing-here.png', '--out-dir', tmp_path)
    assert code == 2 and 'does not exist' in stderr


@pytest.mark.parametrize('tool', TOOLS)
def test_one_preview_table(tool, inputs, capsys):
    code, stdout, _ = _run(tool, capsys, inputs / 'x.png', '--preview-model')
    assert code == 0
    header, *rows = stdout.splitlines()
    assert header.split()[:4] == ['layer', '(for', '--target-layers)', 'type']
    assert f'output shape for {inputs / "x.png"}' in header
    backbone = next(r for r in rows if r.split()[0] == 'backbone')
    assert '1x' in backbone.split()[-1]  # an output shape for IMG (a tuple: in brackets)


@pytest.mark.parametrize('tool', ['featmap', 'boxam'])
def test_show_without_a_display_is_a_note(tool, inputs, tmp_path, capsys, monkeypatch):
    for var in ('DISPLAY', 'WAYLAND_DISPLAY'):
        monkeypatch.delenv(var, raising=False)
    code, stdout, stderr = _run(tool, capsys, inputs / 'x.png', '--out-dir', tmp_path, '--show')
    assert code == 0, stderr
    assert stderr.count('note: --show needs a display') == 1
    assert stdout.split() == [str(tmp_path / 'x.png')]


def test_vis_cam_without_an_output_or_display_says_what_to_add(inputs, capsys, monkeypatch):
    for var in ('DISPLAY', 'WAYLAND_DISPLAY'):
        monkeypatch.delenv(var, raising=False)
    code, _, stderr = _run('vis_cam', capsys, inputs / 'x.png')
    assert code == 2 and '--save-path' in stderr and '--out-dir' in stderr


def test_a_folder_that_links_to_itself_is_walked_once(inputs, tmp_path, capsys):
    import shutil
    folder = tmp_path / 'loop'
    shutil.copytree(inputs / 'a', folder)
    (folder / 'again').symlink_to(folder, target_is_directory=True)
    code, stdout, stderr = _run('featmap', capsys, folder, '--out-dir', tmp_path / 'out')
    assert code == 0, stderr
    assert stdout.split() == [str(tmp_path / 'out' / 'x.png')]


@pytest.mark.parametrize('tool', TOOLS)
def test_an_output_folder_under_a_file_fails_before_the_model_loads(tool, inputs, tmp_path,
                                                                    capsys):
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a folder')
    main, (config, _), extra = TOOLS[tool]
    # A checkpoint that does not exist: the folder check must come first.
    code = main([str(inputs / 'x.png'), str(config), str(tmp_path / 'missing.pth'),
                 '--out-dir', str(blocker / 'out'), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert 'cannot be made' in err and 'is a file, not a folder' in err, err
    assert 'missing.pth' not in err
