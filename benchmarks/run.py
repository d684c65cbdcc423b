"""mmcam against the tools users would run instead: one command, one table.

    python benchmarks/run.py [--quick] [--only gradient folder ...] [--out docs/benchmarks.md]

Each comparison runs both sides in this process (alternating, median of the repeats) or as the
same kind of process, checks that the compared maps are equal (correlation >= 0.999, or up to
sign where the method has none), and the table of ratios is written to ``--out`` with the
absolute times, the machine, the versions, the date and the load average (other work on the
machine slows both sides alike; the ratios of alternating runs stay meaningful).

``--quick`` shrinks every size (small models, few images) for a smoke test; its figures are
not the goals'. The reference tools run with the shim in ``benchmarks/reference`` (grad-cam
>= 1.5 removed ``use_cuda``; setuptools >= 80 removed ``pkg_resources``).
"""
from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PYTHON = sys.executable


@dataclass
class Row:
    """One line of the table."""
    goal: str
    what: str
    mmcam: float                 # seconds (or MiB for memory rows)
    reference: Optional[float]   # the compared tool or floor, same unit
    reference_name: str
    target: str                  # e.g. '<= 1.15', '>= 10x'
    met: Optional[bool]
    maps: str = ''               # how equal the maps are
    note: str = ''
    unit: str = 's'

    @property
    def ratio(self) -> str:
        if self.reference is None or self.mmcam <= 0:
            return '-'
        if self.target.startswith('<='):
            return f'{self.mmcam / self.reference:.2f}'
        return f'{self.reference / self.mmcam:.1f}x'


@dataclass
class Bench:
    quick: bool
    work: Path
    rows: List[Row] = field(default_factory=list)
    loads: Dict[str, str] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f'  [{row.goal}] {row.what}: mmcam {row.mmcam:.3f}{row.unit}, '
              f'{row.reference_name} {row.reference if row.reference is not None else "-"}'
              f'{row.unit}, ratio {row.ratio} (goal {row.target}) {row.maps} {row.note}',
              flush=True)


# -- helpers ---------------------------------------------------------------------------------
def load_average() -> str:
    return ', '.join(f'{x:.1f}' for x in os.getloadavg())


def alternate(funcs: Dict[str, Callable[[], object]], repeats: int, warmup: bool = True
              ) -> Dict[str, float]:
    """Fastest seconds of each function over ``repeats`` rounds, run in turn (the minimum:
    other jobs on the machine only ever add time)."""
    if warmup:
        for f in funcs.values():
            f()
    times: Dict[str, List[float]] = {k: [] for k in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {k: min(v) for k, v in times.items()}


def correlation(a: np.ndarray, b: np.ndarray, sign_free: bool = False) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b, atol=1e-6) else 0.0
    c = float(np.corrcoef(a, b)[0, 1])
    return abs(c) if sign_free else c


def maps_note(corr: float) -> str:
    return f'corr {corr:.6f}' + ('' if corr >= 0.999 else ' (NOT EQUAL)')


def mmpretrain_config(name: str) -> str:
    import mmpretrain
    return str(Path(mmpretrain.__file__).parent / '.mim' / 'configs' / 'resnet' / name)


def classifier(arch: str, work: Path):
    """A ResNet from mmpretrain's shipped config, random weights (seed 0) saved as a
    checkpoint that every tool loads (no weights can be downloaded here)."""
    from mmengine.config import Config
    from mmengine.runner import save_checkpoint
    from mmcam.apis import CAMInferencer
    cfg_path = mmpretrain_config(f'{arch}_8xb32_in1k.py')
    ckpt = work / f'{arch}.pth'
    if not ckpt.exists():
        torch.manual_seed(0)
        inf = CAMInferencer(Config.fromfile(cfg_path), None)
        save_checkpoint({'state_dict': inf.classifier.state_dict()}, str(ckpt))
    return cfg_path, str(ckpt)


def scenes(folder: Path, count: int, size: int = 256) -> List[str]:
    """Digit scenes (real MNIST digits on real photographs), ``size`` px square."""
    from mmcam.datasets.digit_scenes import write_classification
    if not (folder / 'test').exists():
        write_classification(str(folder), 'test', count, seed=3, size=size)
    return sorted(str(p) for p in (folder / 'test').glob('*.png'))[:count]


@contextmanager
def method_class(name: str, cls: type) -> Iterator[None]:
    from mmcam.cams.methods import get_method, register_method
    native = get_method(name)
    register_method(name, cls)
    try:
        yield
    finally:
        register_method(name, native)


# -- 1. gradient methods vs a bare forward + backward ---------------------------------------
def bench_gradient(b: Bench) -> None:
    import pytorch_grad_cam
    from mmengine.config import Config
    from mmcam.apis import CAMInferencer
    from mmcam.apis.cam_inferencer import activation_gradients_only
    from mmcam.cams.gradient import _graph_from_here
    from mmcam.cams.methods import cam_session
    arch, batch = ('resnet18', 2) if b.quick else ('resnet50', 8)
    cfg_path, ckpt = classifier(arch, b.work)
    inf = CAMInferencer(Config.fromfile(cfg_path), ckpt)
    images = scenes(b.work / 'scenes256', 64)[:batch]
    samples = [inf.loaded.prepare([p])[0] for p in images]
    x = torch.cat([s.inputs for s in samples])
    model, layer = inf.model, inf.target_layers[0]

    def bare() -> None:
        """The floor: one forward pass, one backward pass from the predicted classes' scores
        down to the target layer (weights frozen: a CAM needs no weight gradient)."""
        handle = layer.register_forward_hook(_graph_from_here)
        try:
            with activation_gradients_only(model):
                logits = model(x)
                logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
        finally:
            handle.remove()

    def full() -> None:
        """Plain PyTorch: forward, backward to every weight."""
        logits = model(x)
        logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
        model.zero_grad(set_to_none=True)

    def method(name: str, grad_cam: bool) -> Callable[[], None]:
        """The method on the batch, its targets the predicted classes (grad-cam picks them
        from its own forward pass), as CAMInferencer calls it: weights frozen."""
        def run() -> None:
            cls = getattr(pytorch_grad_cam, 'GradCAMPlusPlus' if name == 'GradCAM++' else name)
            with ExitStack() as stack:
                if grad_cam:
                    stack.enter_context(method_class(name, cls))
                stack.enter_context(activation_gradients_only(model))
                cam = stack.enter_context(cam_session(name, model, [layer], inf.reshape))
                maps['grad-cam' if grad_cam else 'mmcam'] = cam(
                    input_tensor=x.detach().requires_grad_(True), targets=None)
        return run

    def explain() -> None:
        """The whole CAMInferencer batch: the method (whose forward pass also gives the
        scores), maps back on the original images."""
        list(inf._run_batch(samples, [name], None, False, False, False))

    t_full = alternate({'full': full}, repeats=1)['full']
    for name in ('GradCAM', 'GradCAM++', 'LayerCAM'):
        maps: Dict[str, np.ndarray] = {}
        t = alternate({'bare': bare, 'mmcam': method(name, False),
                       'grad-cam': method(name, True), 'inferencer': explain}, repeats=2)
        corr = correlation(maps['mmcam'], maps['grad-cam'])
        b.add(Row('1', f'{name}, {arch}, batch of {batch} at {x.shape[-1]} px, '
                  f'{", ".join(inf.target_layer_names)}', t['mmcam'], t['bare'],
                  'forward + backward to the target layer', '<= 1.15',
                  t['mmcam'] / t['bare'] <= 1.15, maps_note(corr),
                  f'grad-cam\'s class {t["grad-cam"]:.2f} s ({t["grad-cam"] / t["bare"]:.2f}); '
                  f'through CAMInferencer {t["inferencer"]:.2f} s '
                  f'({t["inferencer"] / t["bare"]:.2f}: + maps put back on the images); '
                  f'forward + backward to every weight {t_full:.2f} s'))


# -- 2 + 6. a folder through the CLI vs mmpretrain's tool once per image ----------------------
def run_process(cmd: Sequence[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f'{cmd[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}')
    return elapsed


def bench_folder(b: Bench) -> None:
    count, ref_count = (4, 2) if b.quick else (64, 4)
    cfg_path, ckpt = classifier('resnet18', b.work)
    images = scenes(b.work / 'scenes256', 64)[:count]
    folder = b.work / f'folder{count}'
    folder.mkdir(exist_ok=True)
    for p in images:
        link = folder / Path(p).name
        if not link.exists():
            link.symlink_to(p)
    # Not the tools' default (the last norm, backbone.layer4.1.bn2): the block adds its
    # residual into that layer's output in place, which mmpretrain's tool then reads (on the
    # CPU grad-cam keeps the very tensor) while mmcam keeps a copy; the stage output is the
    # same tensor for both.
    layer = 'backbone.layer4'
    ours_dir, ref_dir = b.work / 'vis_cam_out', b.work / 'mmpretrain_out'
    ref_dir.mkdir(exist_ok=True)
    mmcam_cmd = [PYTHON, 'tools/vis_cam.py', str(folder), cfg_path, ckpt, '--target-layers',
                 layer, '--device', 'cpu', '--out-dir', str(ours_dir), '--save-cam']
    ref_times = []
    one_ours = []
    for i, p in enumerate(images[:ref_count]):
        stem = Path(p).stem
        ref_times.append(run_process(
            [PYTHON, 'benchmarks/reference/mmpretrain_vis_cam.py', p, cfg_path, ckpt,
             '--target-layers', layer, '--device', 'cpu', '--save-path',
             str(ref_dir / f'{stem}.png'), '--dump-map', str(ref_dir / f'{stem}.npy')]))
        if i < 2:  # 6: one image, process start to picture written, alternating
            one_ours.append(run_process(
                [PYTHON, 'tools/vis_cam.py', p, cfg_path, ckpt, '--target-layers', layer,
                 '--device', 'cpu', '--save-path', str(b.work / f'one_{stem}.png')]))
    folder_time = run_process(mmcam_cmd)
    # Equal maps: the test pipeline resizes a 256 px image by 1 and crops the centre 224 px;
    # mmcam's map is on the original image, mmpretrain's on the crop.
    corrs = []
    for p in images[:ref_count]:
        stem = Path(p).stem
        ours = np.load(next(ours_dir.rglob(f'{stem}*.npy')))[16:240, 16:240]
        corrs.append(correlation(ours, np.load(ref_dir / f'{stem}.npy')))
    per_image = statistics.mean(ref_times)
    b.add(Row('2', f'{count} images (256 px, ResNet-18, GradCAM) through tools/vis_cam.py '
              f'vs mmpretrain\'s vis_cam.py once per image', folder_time, per_image * count,
              'mmpretrain tool x images', '>= 20x', per_image * count / folder_time >= 20,
              f'min {maps_note(min(corrs))} ({len(corrs)} images)',
              f'mmpretrain measured on {ref_count} images, {per_image:.2f} s each, times '
              f'{count}; mmcam {folder_time / count:.3f} s per image including start-up'))
    ours_one = statistics.median(one_ours)
    ref_one = statistics.median(ref_times[:len(one_ours)])
    b.add(Row('6', 'start-up: one image, process start to picture written (ResNet-18)',
              ours_one, ref_one, 'mmpretrain vis_cam.py', '>= 1.0x', ours_one <= ref_one,
              '', f'median of {len(one_ours)} alternating runs each'))


# -- 3. AblationCAM and ScoreCAM ---------------------------------------------------------------
def bench_perturbation(b: Bench) -> None:
    import pytorch_grad_cam
    from mmengine.config import Config
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from mmcam.apis import CAMInferencer
    from mmcam.cams.ablation import AblationCAM
    from mmcam.cams.score import ScoreCAM
    image = scenes(b.work / 'scenes256', 64)[0]
    cases = [('AblationCAM', 'resnet18' if b.quick else 'resnet50', AblationCAM,
              pytorch_grad_cam.AblationCAM, '>= 10x', 10),
             ('ScoreCAM', 'resnet18', ScoreCAM, pytorch_grad_cam.ScoreCAM, '>= 1.5x', 1.5)]
    for name, arch, ours_cls, ref_cls, target, bar in cases:
        cfg_path, ckpt = classifier(arch, b.work)
        cfg = Config.fromfile(cfg_path)
        if b.quick:  # 96 px crops
            for step in cfg.test_dataloader.dataset.pipeline:
                if step['type'] == 'ResizeEdge':
                    step['scale'] = 110
                elif step['type'] == 'CenterCrop':
                    step['crop_size'] = 96
        inf = CAMInferencer(cfg, ckpt, target_layers=['backbone.layer4'])
        x = inf.loaded.prepare([image])[0].inputs
        with torch.no_grad():
            targets = [ClassifierOutputTarget(int(inf.model(x).argmax()))]
        maps = {}

        def run(cls, key):
            def f():
                with cls(inf.model, inf.target_layers) as cam:
                    cam.batch_size = 32
                    maps[key] = cam(x, targets)
            return f
        # The reference takes minutes at full size: one run each, mmcam first and last.
        t_ours1 = _timed(run(ours_cls, 'mmcam'))
        t_ref = _timed(run(ref_cls, 'grad-cam'))
        t_ours2 = _timed(run(ours_cls, 'mmcam'))
        t_ours = min(t_ours1, t_ours2)
        corr = correlation(maps['mmcam'], maps['grad-cam'])
        with torch.no_grad():
            channels = inf.classifier.backbone(x)[-1].shape[1]
        b.add(Row('3', f'{name}, {arch} at backbone.layer4 ({channels} channels), one '
                  f'{x.shape[-1]} px image, batches of 32', t_ours, t_ref,
                  f'grad-cam {name}', target, t_ref / t_ours >= bar, maps_note(corr),
                  f'mmcam runs {t_ours1:.2f} / {t_ours2:.2f} s around the reference'))


def _timed(f: Callable[[], None]) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


# -- 4. EigenCAM projection --------------------------------------------------------------------
def bench_eigen(b: Bench) -> None:
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
    from mmcam.cams.eigen import first_component_projection
    shapes = [(32, 20, 20), (64, 28, 28)] if b.quick else [(128, 80, 80), (256, 56, 56)]
    rng = np.random.default_rng(0)
    for c, h, w in shapes:
        acts = np.maximum(rng.normal(size=(1, c, h, w)), 0).astype(np.float32)
        out = {}
        t = alternate({'mmcam': lambda: out.__setitem__('mmcam', first_component_projection(acts)),
                       'grad-cam': lambda: out.__setitem__('grad-cam', get_2d_projection(acts))},
                      repeats=2, warmup=b.quick)
        corr = correlation(out['mmcam'], out['grad-cam'], sign_free=True)
        b.add(Row('4', f'EigenCAM / --eigen-smooth projection of a {h}x{w}x{c} map',
                  t['mmcam'], t['grad-cam'], "grad-cam's get_2d_projection", '>= 10x',
                  t['grad-cam'] / t['mmcam'] >= 10, maps_note(corr) + ' (up to sign)'))


# -- 5. box AM vs mmyolo's boxam_utils ---------------------------------------------------------
def yolov5_s_checkpoint(work: Path, image: str):
    """YOLOv5-s from mmyolo's shipped config at 640 px, random weights whose scores on
    ``image`` are spread as a trained detector's (:func:`trained_like_scores`)."""
    from mmdet.evaluation import get_classes
    from mmengine.runner import save_checkpoint
    from benchmarks.boxam_per_box import yolov5_s
    loaded = yolov5_s()
    ckpt = work / 'yolov5_s_calibrated.pth'
    if not ckpt.exists():
        trained_like_scores(loaded, image)
        save_checkpoint({'state_dict': loaded.model.state_dict(),
                         'meta': {'dataset_meta': {'classes': list(get_classes('coco'))}}},
                        str(ckpt))
    return loaded.cfg.filename, str(ckpt)


#: On demo/digits_det.png the trained demo YOLOv5 scores 60 of its 1575 priors at >= 0.3 (3
#: boxes after NMS) and 159 at >= 0.001 (its test_cfg's threshold, which mmyolo's path keeps).
CANDIDATES_PER_BOX, LOW_PER_HIGH = 20, 159 / 60


def trained_like_scores(loaded, image: str, boxes: int = 8) -> None:
    """Set YOLOv5-s's objectness so that, on ``image``, about ``20 * boxes`` priors score at
    least 0.3 and 2.65 times as many at least 0.001, as the trained demo YOLOv5 did when it
    was trained with YOLOv5's own assignment (centre cell and two neighbours; the demo
    checkpoint before 2026-12-03), a third of them on each level (so that the kept boxes come
    from every level).

    With random weights every prior scores alike: all 25200 pass 0.3 when the biases are
    raised, and NMS over them (seconds, O(n^2)) then dominates both tools' time, which no
    trained detector shows. Class 0 stays at logit 2, the other classes go to -10 (none of
    them passes 0.001), and each level's objectness row is scaled and shifted to meet both
    counts."""
    head = loaded.model.bbox_head.head_module
    sample = loaded.prepare([image])[0]
    sure = torch.sigmoid(torch.tensor(2.0))
    high, low = torch.logit(0.3 / sure), torch.logit(0.001 / sure)
    per_level = CANDIDATES_PER_BOX * boxes / len(head.convs_pred)
    with torch.no_grad():
        for conv in head.convs_pred:
            bias = conv.bias.view(head.num_base_priors, -1)
            bias[:, 4], bias[:, 5:], bias[:, 5] = 0.0, -10.0, 2.0
        _, _, objectness = loaded.model.bbox_head(loaded.model.extract_feat(sample.inputs))
        for conv, logits in zip(head.convs_pred, objectness):
            ranked = logits.flatten().sort(descending=True).values
            at_high = ranked[round(per_level)]
            at_low = ranked[round(per_level * LOW_PER_HIGH)]
            scale = float((high - low) / (at_high - at_low))
            conv.weight.view(head.num_base_priors, -1, *conv.weight.shape[1:])[:, 4] *= scale
            conv.bias.view(head.num_base_priors, -1)[:, 4] = float(high - scale * at_high)


def bench_boxam(b: Bench) -> None:
    import cv2
    from benchmarks.reference import mmyolo_boxam
    from mmcam.apis import BoxAMInferencer, LoadedModel
    image_path = str(REPO / 'demo' / 'digits_det.png')
    config, ckpt = yolov5_s_checkpoint(b.work, image_path)
    image = cv2.imread(image_path)
    thr, topk = 0.3, 8
    # The level the best box comes from (the boxes' maps at another level are empty).
    loaded = LoadedModel(config, ckpt)
    best = BoxAMInferencer(loaded, 'gradcam', score_thr=thr, topk=1).adapter.detect(
        loaded.prepare([image_path])[0], thr, 1)
    layer = f'neck.out_layers[{int(best.level[0])}]'
    del loaded, best
    for method, target, bar in (('gradcam', '>= 3x', 3), ('ablationcam', '>= 10x', 10)):
        layer_used = layer
        built = {}
        # Loading: the fastest of 3 alternating loads (one load alone varied 0.1-0.5 s here).
        loads = alternate({
            'mmyolo': lambda: built.__setitem__('mmyolo', mmyolo_boxam.load(config, ckpt, thr)),
            'mmcam': lambda: built.__setitem__('mmcam', BoxAMInferencer(
                LoadedModel(config, ckpt), method, score_thr=thr, topk=topk,
                target_layers=[layer_used]))}, repeats=3, warmup=False)
        wrapper, boxam = built['mmyolo'], built['mmcam']
        ref_load, ours_load = loads['mmyolo'], loads['mmcam']
        out = {}

        def ours():  # mmyolo's path draws its picture too
            out['mmcam'] = boxam(image_path)
            boxam.draw(out['mmcam'])

        def ref():
            out['mmyolo'] = mmyolo_boxam.explain(wrapper, image, method, layer_used, thr, topk)
        if method == 'gradcam':
            t = alternate({'mmcam': ours, 'mmyolo': ref}, repeats=1 if b.quick else 2)
            t_ours, t_ref = t['mmcam'], t['mmyolo']
        else:  # minutes per image for mmyolo: one run each
            t_ours, t_ref = _timed(ours), _timed(ref)
        result = out['mmcam']
        ours_map = result.combined if result.combined is not None else result.box_maps.max(0)
        corr = correlation(cv2.resize(ours_map, out['mmyolo'][0].shape[::-1]), out['mmyolo'][0])
        boxes = len(result.box_maps)
        why = ('different maps by definition: mmyolo explains the training loss of all boxes '
               'at once, mmcam each box\'s own score' if method == 'gradcam' else
               'different maps by definition: mmyolo ablates to min - 1e7 and scores IoU + '
               'score of all boxes at once, mmcam ablates to 0 and explains each box')
        why += (f'; mmcam makes {boxes} maps (one per box) where mmyolo makes 1: per map '
                f'{t_ref * boxes / t_ours:.1f}x')
        if np.asarray(out['mmyolo'][0]).std() == 0:
            why += "; mmyolo's map is flat on these random weights"
        for suffix, o, r in (('model loading excluded', t_ours, t_ref),
                             ('model loading included', t_ours + ours_load, t_ref + ref_load)):
            b.add(Row('5', f'box AM {method}, YOLOv5-s 640 px, {layer_used}, {boxes} boxes, '
                      f'per image, {suffix}', o, r, "mmyolo's boxam_utils", target, r / o >= bar,
                      f'corr {corr:.3f} with mmcam\'s combined map', why))
        gc.collect()


# -- 7. validation with the CAM hook -----------------------------------------------------------
def bench_hooks(b: Bench) -> None:
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmcam.datasets.digit_scenes import write_classification
    count = 50 if b.quick else 200
    data = b.work / 'hook_data'
    if not (data / 'test').exists():
        write_classification(str(data), 'test', count, seed=7)

    def runner(with_hook: bool, tag: str) -> Runner:
        cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'cls_resnet.py'))
        cfg.work_dir = str(b.work / f'hook_{tag}')
        cfg.load_from = str(REPO / 'demo' / 'checkpoints' / 'cls_resnet.pth')
        cfg.test_dataloader.dataset.data_root = str(data)
        cfg.test_dataloader.update(num_workers=0, persistent_workers=False, batch_size=1)
        cfg.visualizer.name = f'visualizer_{tag}'
        cfg.log_level = 'WARNING'
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=10 ** 6)
        cfg.custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
        if with_hook:
            # The layer is named: the default one is found by a probe pass through the test
            # pipeline, which a Runner's model wrapped by the hook does not have at HEAD.
            cfg.custom_hooks = [dict(type='mmcam.CAMVisualizationHook', phases=['test'],
                                     methods=['GradCAM'], interval=50,
                                     target_layers=['backbone.layer4'],
                                     max_samples=count // 50)]
        return Runner.from_cfg(cfg)

    # The time spent inside the hook's calls, measured in the same test run: runs of a
    # 10-second test on a shared machine vary more than the hook costs, so the goal's ratio
    # is (test time) / (test time - time in the hook); alternating runs without the hook are
    # in the note.
    from mmcam.engine.hooks.base import ExplainHook
    spent = [0.0]
    originals = {name: getattr(ExplainHook, name) for name in ('_explain_batch', '_write')}

    def timed(func):
        def run(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return func(self, *args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start
        return run

    runs = {}
    for tag, hook in (('plain', False), ('hook', True)):
        shutil.rmtree(b.work / f'hook_{tag}', ignore_errors=True)  # a reused --work-dir
        runs[tag] = runner(hook, tag)
    times: Dict[str, List[float]] = {'plain': [], 'hook': []}
    in_hook: List[float] = []
    for name, func in originals.items():  # explaining and writing the pictures
        setattr(ExplainHook, name, timed(func))
    try:
        for r in runs.values():  # warm-up: the first test of a runner pays for lazy set-up
            r.test()
        for _ in range(1 if b.quick else 3):
            for tag, r in runs.items():
                spent[0] = 0.0
                start = time.perf_counter()
                r.test()
                times[tag].append(time.perf_counter() - start)
                if tag == 'hook':
                    in_hook.append(spent[0])
    finally:
        for name, func in originals.items():
            setattr(ExplainHook, name, func)
    ratios = [t / (t - h) for t, h in zip(times['hook'], in_hook)]
    best = min(range(len(ratios)), key=ratios.__getitem__)
    hook, plain = times['hook'][best], times['hook'][best] - in_hook[best]
    pictures = len(list((b.work / 'hook_hook').rglob('vis_image/*.png')))
    expected = count // 50  # each run writes the same names again
    b.add(Row('7', f'Runner.test of the demo ResNet on {count} images, CAMVisualizationHook '
              f'drawing 1 sample in 50', hook, plain, 'the same run less the time in the hook',
              '<= 1.10', max(ratios) <= 1.10 and pictures >= expected, '',
              f'ratio per run {", ".join(f"{r:.3f}" for r in ratios)} (the best shown); '
              f'{pictures} of {expected} pictures written; alternating runs (s) without the '
              f'hook {", ".join(f"{t:.1f}" for t in times["plain"])}, with it '
              f'{", ".join(f"{t:.1f}" for t in times["hook"])}'
              + ('' if pictures >= expected else ' (THE HOOK FAILED: see the log)')))


# -- 8. memory over long runs ------------------------------------------------------------------
def bench_memory(b: Bench) -> None:
    from benchmarks import long_run
    images, boxam_images = (60, 60) if b.quick else (500, 200)
    for row in long_run.measure(images, boxam_images, b.work / 'long_run'):
        name, count, early, late, hooks = row
        growth = (late - early) / early
        b.add(Row('8', f'peak RSS, {name}, after 50 vs after {count} images', late, early,
                  'RSS after 50 images', '<= 1.05', late <= 1.05 * early, '',
                  f'{growth:+.1%}; module hooks left on live models: {hooks}', unit=' MiB'))


SECTIONS = {'gradient': bench_gradient, 'folder': bench_folder,
            'perturbation': bench_perturbation, 'eigen': bench_eigen, 'boxam': bench_boxam,
            'hooks': bench_hooks, 'memory': bench_memory}


#: What each goal's row measures and why; printed under the table.
NOTES = """
## What each row measures

1. **Gradient methods** (goal 1): the method on a batch of 8 as CAMInferencer runs it (weights
   frozen, targets the predicted classes) against the floor: one forward pass and one backward
   pass from the same scores down to the target layer. mmcam's GradCAM, GradCAM++ and LayerCAM
   (`mmcam/cams/gradient.py`) start the graph at the target layer, so nothing before it is
   differentiated; grad-cam's classes backpropagate to the input. A ratio below 1 is noise of
   the shared machine: the method does the floor's work plus the maps. The note also gives the
   whole CAMInferencer batch: the method's own forward pass also gives the scores (targets: the
   predicted classes), and the maps are put back on the original images.
2. **A folder through `tools/vis_cam.py`** (goal 2) against mmpretrain's own tool started once
   per image, as its users run it; both at `backbone.layer4`, whose output no later step changes
   in place. (At the tools' default layer, the last norm of the last block, the block adds its
   residual into that layer's output in place; mmpretrain's tool then reads norm + residual on
   the CPU, mmcam copies the output first, so the maps differ there by design.) mmpretrain's
   tool is timed on a few images and multiplied by the folder's size.
3. **AblationCAM / ScoreCAM** (goal 3): the method classes on one image. mmcam's AblationCAM
   (`mmcam/cams/ablation.py`, `mmcam/cams/replay.py`) runs the layers before the target once
   and only the layers after it (global pooling and the linear head at `backbone.layer4`) for
   the ablated copies; it ablates to 0, as the paper does, which at a ReLU output is also
   grad-cam's value. mmcam's ScoreCAM (`mmcam/cams/score.py`) must still run the whole network
   once per channel (the mask is on the input); it scores each distinct mask once and runs the
   passes with the batch norms folded into their convolutions, in channels-last memory order.
4. **EigenCAM / `--eigen-smooth`** (goal 4): the first-principal-component projection alone;
   grad-cam's full SVD also builds the (h*w) x (h*w) matrix U it never reads.
5. **Box AM** (goal 5): YOLOv5-s from mmyolo's shipped config on the demo detection image
   letterboxed to 640 px, random weights whose objectness is set so that the scores spread as
   a trained detector's do (`trained_like_scores`: 160 priors at >= 0.3, 424 at >= 0.001, a
   third on each level, in the trained demo YOLOv5's proportions; with every prior at 0.77, as before 2026-12-02 19:45,
   NMS over 25200 boxes took most of both tools' time). mmyolo's path is
   `mmyolo/utils/boxam_utils.py` driven as its demo drives it (the demo script is not in the
   wheel), AblationCAM with batch size 1; both sides draw their picture. The maps are not
   comparable: mmyolo makes one map for all boxes (the training loss with the detections as
   ground truth, or the sum of IoU + score), mmcam one map per box (its own score); the
   correlation is shown for information only.
6. **Start-up** (goal 6): one image, process start to picture written, both tools as
   subprocesses.
7. **Hooks** (goal 7): `Runner.test` of the demo ResNet, batch size 1, with
   `CAMVisualizationHook(interval=50)`; the time spent in the hook (explaining and writing the
   pictures) is measured inside the same run, because two 10-second runs on the shared
   machine differ by more than the hook costs. Alternating runs without the hook are listed.
8. **Memory** (goal 8): `benchmarks/long_run.py`; resident memory sampled while the tools write
   (`/proc/self/statm`), and the forward/backward hooks left on every live `nn.Module` after both
   runs.
"""


# -- the page ----------------------------------------------------------------------------------
def versions() -> str:
    names = ['torch', 'mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmyolo', 'grad-cam', 'numpy']
    found = []
    for n in names:
        try:
            found.append(f'{n} {importlib.metadata.version(n)}')
        except importlib.metadata.PackageNotFoundError:
            pass
    return ', '.join(found)


def machine() -> str:
    model = platform.processor() or 'unknown CPU'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30
    return (f'{model}, {os.cpu_count()} cores, {mem:.0f} GiB, torch threads '
            f'{torch.get_num_threads()}, {platform.platform()}, Python {platform.python_version()}')


def page(b: Bench, started: datetime.datetime, seconds: float, sections: Sequence[str]) -> str:
    lines = [
        '# Benchmarks: mmcam against the tools users run instead',
        '',
        'Written by `python benchmarks/run.py`' + (' --quick (smoke-test sizes: NOT the goals\' '
                                                  'figures)' if b.quick else '') +
        f' on {started:%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} min.',
        '',
        f'- machine: {machine()}',
        f'- versions: {versions()}',
        '- load average (1, 5, 15 min) before each section: '
        + '; '.join(f'{k} {v}' for k, v in b.loads.items()),
        '- the benchmark itself keeps both cores busy (a load near 2); a higher load means other '
        'jobs shared the CPU, which slows both sides of a row alike (they run alternately).',
        '',
        '| goal | comparison | mmcam | compared with | ratio | goal | met | maps | note |',
        '| --- | --- | ---: | --- | ---: | --- | --- | --- | --- |',
    ]
    for r in b.rows:
        ref = f'{r.reference_name}: {r.reference:.3f}{r.unit}' if r.reference is not None \
            else r.reference_name
        met = '-' if r.met is None else ('yes' if r.met else '**no**')
        lines.append(f'| {r.goal} | {r.what} | {r.mmcam:.3f}{r.unit} | {ref} | {r.ratio} | '
                     f'{r.target} | {met} | {r.maps} | {r.note} |')
    lines += ['', 'Ratios: "x" rows are (compared time) / (mmcam time), higher is better; '
              'plain rows are mmcam / compared, lower is better. Sections run: '
              + ', '.join(sections) + '.', NOTES]
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='small sizes (smoke test)')
    parser.add_argument('--only', nargs='+', choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument('--out', default=None,
                        help='markdown page (default docs/benchmarks.md; with --quick nothing '
                        'is written unless given)')
    parser.add_argument('--work-dir', default=None, help='scratch folder (default: a temp one)')
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else str(REPO / 'docs' / 'benchmarks.md'))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='mmcam_bench_'))
    work.mkdir(parents=True, exist_ok=True)
    b = Bench(args.quick, work)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    print(f'mmcam benchmarks{" (quick)" if args.quick else ""}; scratch {work}', flush=True)
    for name in args.only:
        b.loads[name] = load_average()
        print(f'== {name} (load {b.loads[name]})', flush=True)
        start = time.perf_counter()
        try:
            SECTIONS[name](b)
        except Exception as err:  # one failing comparison must not lose the others
            import traceback
            traceback.print_exc()
            b.rows.append(Row(name, f'{name}: FAILED ({type(err).__name__}: '
                              f'{str(err).splitlines()[0][:200] if str(err) else ""})', 0.0,
                              None, '-', '-', False))
        print(f'   {name} took {time.perf_counter() - start:.0f} s', flush=True)
        if out:  # written after every section: a late failure keeps the earlier rows
            Path(out).write_text(page(b, started, time.perf_counter() - t0, args.only))
    print(page(b, started, time.perf_counter() - t0, args.only))
    if out:
        print(f'written: {out}')


if __name__ == '__main__':
    main()
