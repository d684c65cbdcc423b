"""tools/eval_cam.py on the trained demo models, through mmengine's Runner test loop."""
import json
import os
import subprocess
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest

from mmcam.apis import BoxAMInferencer, CAMInferencer, LoadedModel
from mmcam.cams.localisation import localisation_hits
from mmcam.datasets.digit_scenes import DigitSceneGenerator, write_detection
from mmcam.evaluation.digit_data import write_classification_with_boxes
from mmcam.evaluation.faithfulness import randomised_copy
from mmcam.evaluation.tool import main

REPO = Path(__file__).resolve().parents[2]
RESNET = (str(REPO / 'configs/demo/cls_resnet.py'), str(REPO / 'demo/checkpoints/cls_resnet.pth'))
VIT = (str(REPO / 'configs/demo/cls_vit.py'), str(REPO / 'demo/checkpoints/cls_vit.pth'))
YOLOV5 = (str(REPO / 'configs/demo/det_yolov5.py'), str(REPO / 'demo/checkpoints/det_yolov5.pth'))
CLS_SEED, CLS_COUNT = 1, 12   # the old localisation check's seed
DET_SEED, DET_COUNT = 7, 5    # the old box-AM check's seed


@pytest.fixture(scope='module')
def cls_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('cls')
    write_classification_with_boxes(str(root), 'test', CLS_COUNT, CLS_SEED)
    return root


@pytest.fixture(scope='module')
def det_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('det')
    write_detection(str(root), 'test', DET_COUNT, DET_SEED)
    return root


def _run(model, data_root, work_dir, *options):
    code = main([*model, '--work-dir', str(work_dir), '--cfg-options',
                 f'test_dataloader.dataset.data_root={data_root}/', *options])
    assert code == 0
    return json.loads((Path(work_dir) / 'results.json').read_text())


@pytest.mark.parametrize('model,layers,methods', [
    (RESNET, ['backbone.layer4'], ['GradCAM', 'LayerCAM']),
    (VIT, [], ['GradCAM'])], ids=['resnet', 'vit'])
def test_classifier_localisation_equals_the_old_check(cls_data, tmp_path, model, layers,
                                                      methods):
    """Same scenes, same numbers as tools/eval_cam_localisation.py (strict and 4 px), now
    read through the config's test dataloader and the Runner."""
    res = _run(model, cls_data, tmp_path, '--methods', *methods,
               *(['--target-layers', *layers] if layers else []), '--metrics', 'localisation',
               '--tolerance', '4')
    inferencer = CAMInferencer(*model, target_layers=layers or None)
    for method in methods:
        (strict, loose), total = localisation_hits(inferencer, method, CLS_COUNT, CLS_SEED,
                                                   margins=(0, 4))
        s = res['summary'][method]
        assert s['images'] == total == CLS_COUNT
        assert round(s['pointing_strict']['mean'] * total) == strict
        assert round(s['pointing_4px']['mean'] * total) == loose
        assert s['pointing_strict']['low'] <= s['pointing_strict']['mean']
    assert sorted(r['index'] for r in res['images']) == list(range(CLS_COUNT))


def _old_boxam_figures(method: str, explain: str = 'class') -> dict:
    """What tools/eval_boxam.py computed: its scenes drawn in memory (not read from files),
    each box's own map against that box, the combined map against all detected boxes."""
    boxam = BoxAMInferencer(LoadedModel(*YOLOV5), method, score_thr=0.3, explain=explain)
    gen = DigitSceneGenerator('test', seed=DET_SEED)
    inside, near, ratios, boxes = [], [], [], 0
    for _ in range(DET_COUNT):
        result = boxam(mmcv.rgb2bgr(gen.detection_scene().image))
        boxes += len(result.detections)
        for box_map, (x1, y1, x2, y2) in zip(result.box_maps, result.detections.bboxes):
            y, x = np.unravel_index(np.argmax(box_map), box_map.shape)
            inside.append(x1 <= x + 0.5 <= x2 and y1 <= y + 0.5 <= y2)
            near.append(x1 - 4 <= x + 0.5 <= x2 + 4 and y1 - 4 <= y + 0.5 <= y2 + 4)
        if len(result.detections) and result.combined.sum() > 0:
            mask = np.zeros(result.combined.shape, bool)
            for x1, y1, x2, y2 in result.detections.bboxes:
                mask[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = 1
            ratios.append(result.combined[mask].sum() / result.combined.sum() / mask.mean())
    return dict(boxes=boxes, peak_in_box=np.mean(inside), peak_within_4px=np.mean(near),
                energy_ratio=np.mean(ratios))


def test_detector_figures_equal_the_old_box_am_check(det_data, tmp_path):
    res = _run(YOLOV5, det_data, tmp_path, '--methods', 'gradcam', '--metrics',
               'localisation', '--tolerance', '4')
    s = res['summary']['gradcam']
    old = _old_boxam_figures('gradcam')
    assert s['boxes'] == old['boxes'] > 0
    assert s['peak_in_own_box']['mean'] == pytest.approx(old['peak_in_box'])
    assert s['peak_in_own_box_4px']['mean'] == pytest.approx(old['peak_within_4px'])
    assert s['energy_ratio_detections']['mean'] == pytest.approx(old['energy_ratio'])
    # And against the ground truth: every matched detection's map, in its true box.
    assert 0 < s['matched']['mean'] <= 1 and s['pointing_4px']['n'] > 0


def test_explain_box_is_evaluated_as_the_inferencer_draws_it(det_data, tmp_path):
    """--explain box: the figures of the box-regression maps, not those of the class maps."""
    res = _run(YOLOV5, det_data, tmp_path, '--methods', 'gradcam', '--explain', 'box',
               '--metrics', 'localisation', '--tolerance', '4')
    s = res['summary']['gradcam']
    box, cls = _old_boxam_figures('gradcam', 'box'), _old_boxam_figures('gradcam')
    assert s['boxes'] == box['boxes'] > 0
    assert s['energy_ratio_detections']['mean'] == pytest.approx(box['energy_ratio'])
    assert s['peak_in_own_box']['mean'] == pytest.approx(box['peak_in_box'])
    assert box['energy_ratio'] != pytest.approx(cls['energy_ratio'])


def test_explain_needs_a_detector_and_a_gradient_method(cls_data, det_data, tmp_path, capsys):
    code = main([*RESNET, '--work-dir', str(tmp_path / 'cls'), '--explain', 'box',
                 '--cfg-options', f'test_dataloader.dataset.data_root={cls_data}/'])
    assert code == 2 and 'for detectors' in capsys.readouterr().err
    code = main([*YOLOV5, '--work-dir', str(tmp_path / 'det'), '--methods', 'eigencam',
                 '--explain', 'box', '--metrics', 'localisation',
                 '--cfg-options', f'test_dataloader.dataset.data_root={det_data}/'])
    assert code == 2 and 'needs a gradient method' in capsys.readouterr().err


def _dist_env():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), env.get('PYTHONPATH', '')])
    return env


def test_one_and_two_processes_give_identical_per_image_figures(cls_data, tmp_path):
    """torchrun --nproc-per-node 2 (gloo on the CPU): each process explains half of the
    images and rank 0 gathers them; every per-image figure equals the single process's."""
    # Every figure group, ROAD too: its imputation noise is seeded per image.
    args = [*RESNET, '--methods', 'GradCAM', '--target-layers', 'backbone.layer4',
            '--metrics', 'localisation', 'deletion', 'confidence', 'road', 'sanity',
            '--max-samples', '5', '--cfg-options',
            f'test_dataloader.dataset.data_root={cls_data}/', 'test_dataloader.batch_size=2']
    one = subprocess.run([sys.executable, str(REPO / 'tools/eval_cam.py'), *args,
                          '--work-dir', str(tmp_path / 'one')], env=_dist_env(),
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node',
                          '2', '--master-port', '29531', str(REPO / 'tests/_cpu_dist_launch.py'),
                          str(REPO / 'tools/eval_cam.py'), *args,
                          '--work-dir', str(tmp_path / 'two')], env=_dist_env(),
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    res1 = json.loads((tmp_path / 'one' / 'results.json').read_text())
    res2 = json.loads((tmp_path / 'two' / 'results.json').read_text())
    assert res2['meta']['processes'] == 2 and res1['meta']['processes'] == 1
    # Both ranks wrote records: the work was split.
    assert len(list((tmp_path / 'two' / 'per_image').glob('*_rank1.jsonl'))) == 1
    assert [r['index'] for r in res2['images']] == list(range(5))
    assert res1['images'] == res2['images']
    assert res1['summary'] == res2['summary']
    figures = res1['images'][0]['maps']['GradCAM']
    for name in ('pointing_strict', 'energy_ratio', 'deletion_auc', 'insertion_auc',
                 'average_drop', 'increase', 'road', 'sanity_rho'):
        assert name in figures, figures
    assert (tmp_path / 'one' / 'report' / 'index.html').is_file()
    assert one.stdout.strip().splitlines()[-1].endswith('index.html')


def test_randomised_copy_changes_only_the_head_and_last_stage():
    loaded = LoadedModel(*RESNET)
    clone, names = randomised_copy(loaded.model)
    assert names == ['head', 'backbone.layer4']
    before, after = loaded.model.state_dict(), clone.state_dict()
    changed = {k for k in before if not np.array_equal(before[k].numpy(), after[k].numpy())
               and before[k].is_floating_point()}
    assert any(k.startswith('head.') for k in changed)
    assert any(k.startswith('backbone.layer4.') for k in changed)
    assert all(k.startswith(('head.', 'backbone.layer4.')) for k in changed), changed
    again, _ = randomised_copy(loaded.model)  # seeded: every process builds the same copy
    assert all(np.array_equal(v.numpy(), again.state_dict()[k].numpy()) for k, v in
               after.items())


def test_bad_options_are_one_line_errors(cls_data, tmp_path, capsys):
    code = main([*RESNET, '--work-dir', str(tmp_path), '--boxes', str(tmp_path / 'no.json'),
                 '--cfg-options', f'test_dataloader.dataset.data_root={cls_data}/'])
    err = capsys.readouterr().err
    assert code == 2 and "--boxes" in err and 'expected a JSON file' in err


def test_an_interrupted_run_keeps_what_it_finished(cls_data, tmp_path):
    """Ctrl-C (SIGINT) mid-run: the finished images are written as results and report."""
    import signal
    import time
    proc = subprocess.Popen([sys.executable, str(REPO / 'tools/eval_cam.py'), *RESNET,
                             '--target-layers', 'backbone.layer4', '--metrics', 'localisation',
                             'road', '--work-dir', str(tmp_path), '--cfg-options',
                             f'test_dataloader.dataset.data_root={cls_data}/',
                             'test_dataloader.batch_size=1'],
                            env=_dist_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 300
    records = []
    while time.time() < deadline and proc.poll() is None:
        records = [line for path in (tmp_path / 'per_image').glob('*.jsonl')
                   for line in path.read_text().splitlines()] \
            if (tmp_path / 'per_image').is_dir() else []
        if len(records) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, 'the run ended before it could be interrupted'
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-2000:]
    res = json.loads((tmp_path / 'results.json').read_text())
    assert res['meta']['interrupted'] is True
    assert 2 <= len(res['images']) < CLS_COUNT
    assert res['summary']['GradCAM']['images'] == len(res['images'])
    assert 'interrupted' in err and (tmp_path / 'report' / 'index.html').is_file()


def test_several_layers_are_evaluated_one_by_one(cls_data, tmp_path):
    res = _run(RESNET, cls_data, tmp_path, '--methods', 'GradCAM', '--target-layers',
               'backbone.layer3', 'backbone.layer4', '--metrics', 'localisation',
               '--max-samples', '3', '--save-maps')
    assert set(res['summary']) == {'GradCAM@backbone.layer3', 'GradCAM@backbone.layer4'}
    # Different layers, different maps (saved as float16 on the original image).
    a = np.load(tmp_path / 'maps' / '000000_GradCAM_backbone.layer3.npy')
    b = np.load(tmp_path / 'maps' / '000000_GradCAM_backbone.layer4.npy')
    assert a.shape == b.shape == (96, 96) and not np.array_equal(a, b)


def test_detector_faithfulness_and_sanity_per_box(det_data, tmp_path):
    res = _run(YOLOV5, det_data, tmp_path, '--methods', 'gradcam', '--max-samples', '2')
    rec = res['images'][0]['maps']['gradcam']
    n = rec['boxes']
    assert n > 0
    for name in ('deletion_auc', 'insertion_auc', 'average_drop', 'increase', 'sanity_rho',
                 'peak_in_own_box', 'matched'):
        assert len(rec[name]) == n, (name, rec[name])
    assert all(0 <= v <= 1 for v in rec['insertion_auc'])
    assert 'road' not in rec  # on request only
    s = res['summary']['gradcam']
    assert s['sanity'] in ('pass', 'FAIL') and s['deletion_auc']['n'] == s['boxes']
