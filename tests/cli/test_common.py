"""One command-line behaviour for the three tools (mmcam/cli): the same cases through each.

Exit status 0 / 1 / 2, output names that never collide, messages on stderr and the written
files on stdout, the --device default said in one line, one --preview-model table, --show
without a display. Real demo models and real photographs.
"""
from __future__ import annotations

from pathlib import Path

import mmcv
import numpy as np
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


@pytest.mark.parametrize('tool', TOOLS)
def test_skip_existing_goes_on_where_a_run_stopped(tool, inputs, tmp_path, capsys):
    out = tmp_path / 'out'
    assert _run(tool, capsys, inputs, '--out-dir', out)[0] == 1
    (out / 'a' / 'x.png').write_bytes(b'kept')  # a marker: a rerun must not touch it
    (out / 'b' / 'x.png').unlink()              # as if the run had stopped before it
    code, stdout, stderr = _run(tool, capsys, inputs, '--out-dir', out, '--skip-existing')
    assert code == 1, stderr  # broken.png is still skipped
    assert (out / 'a' / 'x.png').read_bytes() == b'kept'
    assert stdout.split() == [str(out / 'b' / 'x.png')]
    assert '4 of 5 images done, 1 files written' in stderr
    assert '3 already written (--skip-existing)' in stderr
    # Without --skip-existing a rerun replaces them, and says so.
    code, stdout, stderr = _run(tool, capsys, inputs, '--out-dir', out)
    assert code == 1 and len(stdout.split()) == 4
    assert 'note: 4 files of an earlier run were replaced' in stderr
    assert (out / 'a' / 'x.png').read_bytes() != b'kept'


def test_a_folder_of_awkward_images_is_written_except_the_unreadable(tmp_path, capsys):
    """Grayscale, RGBA, palette, 16-bit, 1 x 1, spaces and non-ASCII names are drawn; empty,
    truncated and text files are skipped with a reason; a folder named like an image is not
    an input. The same through all three tools."""
    import cv2
    from PIL import Image
    from skimage import data
    rgb = cv2.resize(data.chelsea(), (120, 90))
    src = tmp_path / 'imgs'
    src.mkdir()
    cv2.imwrite(str(src / 'good.png'), rgb[..., ::-1])
    (src / 'empty.png').write_bytes(b'')
    for ext in ('.jpg', '.png'):
        cv2.imwrite(str(src / f'whole{ext}'), rgb[..., ::-1])
        whole = (src / f'whole{ext}').read_bytes()
        (src / f'whole{ext}').unlink()
        (src / f'truncated{ext}').write_bytes(whole[:len(whole) // 2])
    (src / 'text.jpg').write_text('not an image')
    (src / 'folder.png').mkdir()
    cv2.imwrite(str(src / 'gray.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(
        src / 'rgba.png')
    Image.fromarray(rgb).quantize(64).save(src / 'palette.png')
    cv2.imwrite(str(src / 'deep16.png'), (rgb.astype(np.uint16) * 257)[..., ::-1])
    cv2.imwrite(str(src / 'one.png'), rgb[:1, :1, ::-1])
    cv2.imwrite(str(src / 'name with space.png'), rgb[..., ::-1])
    Image.fromarray(rgb).save(src / '猫 ünïcode.png')
    drawn = {'good', 'gray', 'rgba', 'palette', 'deep16', 'one', 'name with space', '猫 ünïcode'}
    unreadable = {'empty.png', 'truncated.jpg', 'truncated.png', 'text.jpg'}
    for tool in TOOLS:
        out = tmp_path / tool
        code, stdout, stderr = _run(tool, capsys, src, '--out-dir', out)
        assert code == 1, stderr
        assert {Path(p).stem for p in stdout.splitlines()} == drawn, (tool, stdout)
        skipped = [line for line in stderr.splitlines() if line.startswith('skipped ')]
        assert {Path(line.split(': ')[0][8:]).name for line in skipped} == unreadable, stderr
        assert all(line.split(': ', 1)[1].strip() for line in skipped)  # a reason each
        assert '8 of 12 images done' in stderr


def test_a_long_run_holds_no_more_memory_than_a_short_one(tmp_path, capsys):
    """Loosely (benchmarks/long_run.py measures 500 images): running a folder of 40 images
    again in the same process leaves the resident memory where the first run left it."""
    from _memory import rss_mib
    from mmcam.datasets.digit_scenes import write_classification

    write_classification(str(tmp_path / 'imgs'), 'test', 40, seed=3)
    after = []
    for run in range(3):
        code = _run('vis_cam', capsys, tmp_path / 'imgs', '--out-dir', tmp_path / f'o{run}')[0]
        assert code == 0
        after.append(rss_mib())
    assert after[2] <= after[1] * 1.05 + 20, after  # MiB


def test_two_runs_writing_into_one_folder_leave_whole_files(tmp_path):
    """Two processes explain the same folder into the same --out-dir at the same time (maps
    saved too): both finish, every file is complete and readable, no temporary file is left
    behind, and each picture equals the one a run alone writes."""
    import subprocess
    import sys

    from mmcam.datasets.digit_scenes import write_classification
    write_classification(str(tmp_path / 'imgs'), 'test', 12, seed=4)
    config, checkpoint = CLS

    def start(out: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(REPO / 'tools' / 'vis_cam.py'), str(tmp_path / 'imgs'),
             str(config), str(checkpoint), '--out-dir', str(out), '--save-cam',
             '--device', 'cpu'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    both = [start(tmp_path / 'shared'), start(tmp_path / 'shared')]
    results = [p.communicate(timeout=300) for p in both]
    assert [p.returncode for p in both] == [0, 0], [err[-2000:] for _, err in results]
    alone = start(tmp_path / 'alone')
    _, err = alone.communicate(timeout=300)
    assert alone.returncode == 0, err[-2000:]
    shared = sorted(p.relative_to(tmp_path / 'shared') for p in (tmp_path / 'shared').rglob('*')
                    if p.is_file())
    assert shared == sorted(p.relative_to(tmp_path / 'alone')
                            for p in (tmp_path / 'alone').rglob('*') if p.is_file())
    assert not [p for p in shared if p.name.startswith('.')], shared  # no temporary files
    assert sum(p.suffix == '.png' for p in shared) == 12
    for rel in shared:
        a, b = tmp_path / 'shared' / rel, tmp_path / 'alone' / rel
        if rel.suffix == '.png':
            np.testing.assert_array_equal(mmcv.imread(str(a)), mmcv.imread(str(b)))
        else:
            np.testing.assert_array_equal(np.load(a), np.load(b))
