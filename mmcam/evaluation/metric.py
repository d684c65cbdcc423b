"""CAMQualityMetric: explanation quality over a dataset, as an mmengine metric.

It runs inside a Runner's test loop: each process explains the samples its sampler hands it
(:meth:`CAMQualityMetric.process`), and rank 0 gets everyone's per-image records and
summarises them (:meth:`CAMQualityMetric.compute_metrics`). The model to explain is bound
with :meth:`CAMQualityMetric.bind` (``tools/eval_cam.py`` does it): mmengine hands a metric
predictions, not the model.
"""
from __future__ import annotations

import json
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.evaluator import BaseMetric

from mmcam.apis.boxam import BoxAMInferencer
from mmcam.apis.cam_inferencer import CAMInferencer
from mmcam.apis.model_loader import LoadedModel
from mmcam.cams.box_methods import get_box_method
from mmcam.cams.methods import get_method
from mmcam.evaluation import faithfulness as faith
from mmcam.evaluation.scores import (POINTING_TOLERANCE, energy_ratio, match_detections,
                                     mean_ci, peak, point_in_box, spearman)
from mmcam.models.state import model_state_restored
from mmcam.registry import METRICS
from mmcam.utils.errors import OptionError

#: Figure groups ``--metrics`` chooses from.
METRIC_GROUPS = ('localisation', 'deletion', 'confidence', 'road', 'sanity')
#: A method passes the sanity check when its maps' mean rank correlation with the maps of
#: the randomised model stays below this (Adebayo et al. read the same comparison visually).
SANITY_THRESHOLD = 0.5
#: Larger original images are scaled down to this side in the report.
REPORT_SIDE = 256


def slug(text: str) -> str:
    """A file-name-safe form of a method/layer key."""
    return re.sub(r'[^A-Za-z0-9_.+-]+', '_', text)


def load_box_file(path: str) -> Dict[str, np.ndarray]:
    """Boxes per image from a JSON file: ``{"images": [{"file": ..., "boxes": [[x1, y1, x2,
    y2], ...]}, ...]}`` (the digit scenes' format), files relative to the JSON's folder;
    keys are absolute paths."""
    try:
        with open(path) as f:
            items = json.load(f)['images']
        root = os.path.dirname(os.path.abspath(path))
        return {os.path.abspath(os.path.join(root, it['file'])):
                np.asarray(it['boxes'], np.float64).reshape(-1, 4) for it in items}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OptionError(f'--boxes {path!r} could not be read ({type(err).__name__}: {err}); '
                          'expected a JSON file {"images": [{"file": "test/00000.png", '
                          '"boxes": [[x1, y1, x2, y2]]}]}, files relative to its folder.') from err


@METRICS.register_module()
class CAMQualityMetric(BaseMetric):
    """Localisation, faithfulness and sanity figures of CAM methods over a test set.

    Args:
        methods: classification: grad-cam method names (``GradCAM``, ``LayerCAM``, ...);
            detection: box-AM methods (``gradcam``, ``layercam``, ...).
        target_layers: layer names; several are evaluated one by one (keys ``method@layer``).
            Default: the tools' defaults (box AM: the neck's three levels together).
        metrics: figure groups, a subset of :data:`METRIC_GROUPS`.
        category: classifiers: explain the ``'gt'`` class (the predicted one when the
            sample has no label) or the ``'pred'`` one.
        explain: detectors: what each box's map explains, ``'class'``, ``'box'`` or ``'both'``
            (as ``demo/boxam_vis_demo.py --explain``).
        tolerances: pointing-game tolerances in pixels, besides the strict count.
        boxes: classifiers: a JSON file with each image's object boxes (see
            :func:`load_box_file`); detectors take theirs from the samples' ``gt_instances``.
        score_thr: detectors: explain detections with at least this confidence.
        steps: deletion/insertion curve points.
        road_percentiles: ROAD's removal percentiles.
        work_dir: where each process writes the report pictures, the maps (``save_maps``)
            and its per-image records as they come (``per_image/*.jsonl``).
        save_maps: also save every map as ``maps/<index>_<key>.npy`` (float16).
    """
    default_prefix = 'cam'

    def __init__(self,
                 methods: Union[str, Sequence[str]] = ('GradCAM', ),
                 target_layers: Optional[Sequence[str]] = None,
                 metrics: Sequence[str] = METRIC_GROUPS,
                 category: str = 'gt',
                 explain: str = 'class',
                 tolerances: Sequence[float] = (POINTING_TOLERANCE, ),
                 boxes: Optional[str] = None,
                 score_thr: float = 0.3,
                 steps: int = 16,
                 road_percentiles: Sequence[int] = faith.ROAD_PERCENTILES,
                 work_dir: Optional[str] = None,
                 save_maps: bool = False,
                 run_name: str = 'run',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.methods = [methods] if isinstance(methods, str) else list(methods)
        unknown = sorted(set(metrics) - set(METRIC_GROUPS))
        if unknown or not metrics:
            raise OptionError(f'--metrics {" ".join(metrics)}: {unknown or "none given"}; '
                              f'expected some of {", ".join(METRIC_GROUPS)}.')
        if category not in ('gt', 'pred'):
            raise OptionError(f"category={category!r}: expected 'gt' or 'pred'.")
        self.explain = explain
        self.groups = tuple(g for g in METRIC_GROUPS if g in metrics)
        self.target_layers = list(target_layers) if target_layers else None
        self.category, self.tolerances = category, tuple(float(t) for t in tolerances)
        self.boxes = load_box_file(boxes) if boxes else None
        self.score_thr, self.steps = score_thr, steps
        self.road_percentiles = tuple(road_percentiles)
        self.work_dir, self.save_maps, self.run_name = work_dir, save_maps, run_name
        self.loaded: Optional[LoadedModel] = None
        #: Called with the number of samples this process finished (a progress bar).
        self.progress: Optional[Callable[[int], None]] = None
        self.records: List[dict] = []   # rank 0, after evaluate(): every image's record
        self.summary: Dict[str, dict] = {}

    # -- set-up ---------------------------------------------------------------------------
    def bind(self, loaded: LoadedModel) -> 'CAMQualityMetric':
        """Explain ``loaded``'s model (the one the Runner tests)."""
        self.loaded = loaded
        self.task = loaded.task
        if self.task == 'classification' and self.explain != 'class':
            raise OptionError(f'--explain {self.explain} is for detectors; a '
                              "classifier's map always explains a class. Drop it.")
        layers: List[Optional[List[str]]] = [[n] for n in self.target_layers] \
            if self.target_layers and len(self.target_layers) > 1 else [self.target_layers]
        self.random_model = self.randomised_names = random_loaded = None
        if 'sanity' in self.groups:
            self.random_model, self.randomised_names = faith.randomised_copy(loaded.model)
            random_loaded = LoadedModel.from_model(self.random_model, loaded.scope,
                                                   loaded.dataset_meta)
        #: key -> (explainer of the model, the same explainer of the randomised copy or None)
        self.explainers: Dict[str, tuple] = {}
        for layer in layers:
            suffix = f'@{layer[0]}' if len(layers) > 1 else ''
            if self.task == 'classification':
                for m in self.methods:
                    get_method(m)  # an unknown name fails before any image is read
                pair = [CAMInferencer(lm, target_layers=layer) if lm else None
                        for lm in (loaded, random_loaded)]
                self.explainers[suffix] = tuple(pair)
                continue
            # Layers only when given: the inferencer knows each family's default.
            options = dict(score_thr=self.score_thr, explain=self.explain,
                           **({'target_layers': layer} if layer else {}))
            for m in self.methods:
                pair = [BoxAMInferencer(lm, m, **options) if lm else None
                        for lm in (loaded, random_loaded)]
                self.explainers[f'{get_box_method(m).name}{suffix}'] = tuple(pair)
        if self.work_dir:
            rank = get_rank()
            self.records_file = os.path.join(self.work_dir, 'per_image',
                                             f'{self.run_name}_rank{rank}.jsonl')
            os.makedirs(os.path.dirname(self.records_file), exist_ok=True)
            open(self.records_file, 'w').close()
            os.makedirs(os.path.join(self.work_dir, 'report', 'images'), exist_ok=True)
            if self.save_maps:
                os.makedirs(os.path.join(self.work_dir, 'maps'), exist_ok=True)
        return self

    # -- per batch ------------------------------------------------------------------------
    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        if self.loaded is None:
            raise RuntimeError('CAMQualityMetric has no model to explain: call '
                               'metric.bind(LoadedModel.from_model(runner.model, scope)) before '
                               'runner.test(), or run tools/eval_cam.py, which does.')
        n = len(data_batch['data_samples'])
        original = self.task != 'classification' or self.boxes is not None
        samples = self.loaded.samples_from_batch(data_batch, range(n), original=original)
        # The test loop runs without gradients; the maps need them.
        with torch.enable_grad(), model_state_restored(self.loaded.model):
            for sample in samples:
                if self.task == 'classification':
                    record = self._classification(sample)
                else:
                    record = self._detection(sample)
                self.results.append(record)
                if self.work_dir:
                    with open(self.records_file, 'a') as f:
                        f.write(json.dumps(record) + '\n')
                if self.progress:
                    self.progress(1)

    @staticmethod
    def _index(sample) -> int:
        meta = sample.data_sample.metainfo
        for key in ('sample_idx', 'img_id'):
            if meta.get(key) is not None:
                return int(meta[key])
        raise KeyError("The data samples carry neither 'sample_idx' nor 'img_id'; expected an "
                       "OpenMMLab dataset's test pipeline (add one to the Pack meta_keys).")

    def _picture(self, name: str, rgb: np.ndarray) -> str:
        """Write a report picture (scaled down to REPORT_SIDE); its path under report/."""
        rel = f'images/{name}.png'
        h, w = rgb.shape[:2]
        if max(h, w) > REPORT_SIDE:
            s = REPORT_SIDE / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))),
                             interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(self.work_dir, 'report', rel), rgb[..., ::-1])
        return rel

    def _save_map(self, index: int, key: str, cam: np.ndarray) -> None:
        if self.work_dir and self.save_maps:
            np.save(os.path.join(self.work_dir, 'maps', f'{index:06d}_{slug(key)}.npy'),
                    cam.astype(np.float16))

    def _localisation(self, cam: np.ndarray, boxes: np.ndarray, out: dict, prefix: str = ''
                      ) -> None:
        xy = peak(cam)
        out[f'{prefix}pointing_strict'] = float(any(point_in_box(xy, b) for b in boxes))
        for t in self.tolerances:
            out[f'{prefix}pointing_{t:g}px'] = float(any(point_in_box(xy, b, t) for b in boxes))
        out[f'{prefix}energy_ratio'] = energy_ratio(cam, boxes)

    # -- classifiers ----------------------------------------------------------------------
    def _classification(self, sample) -> dict:
        index = self._index(sample)
        ds = sample.data_sample
        label = int(ds.gt_label[0]) if 'gt_label' in ds and len(ds.gt_label) else None
        boxes = None
        if self.boxes is not None and 'localisation' in self.groups:
            boxes = self.boxes.get(os.path.abspath(sample.path or ''))
        record = dict(index=index, img_path=sample.path, label=label, maps={})
        if self.work_dir:
            record['picture'] = self._picture(f'{index:06d}', sample.image)
        for suffix, (explainer, random_explainer) in self.explainers.items():
            category = None
            if self.category == 'gt' and label is not None:
                category = [label]
            result = explainer.explain(sample, methods=self.methods, target_category=category)
            record.update(pred=result.pred_label, pred_score=result.pred_score)
            score_fn = lambda x, e=explainer: e.model.scores(e.model(x))  # noqa: E731
            for m in result.maps:
                key = m.method + suffix
                fig = dict(category=m.category, score=m.score)
                if boxes is not None:
                    self._localisation(m.cam, boxes, fig)
                self._faithfulness(score_fn, sample.inputs, m.cam_input[None], [m.category],
                                   [m.score], index, fig)
                if random_explainer is not None:
                    rand = random_explainer.explain(sample, methods=[m.method],
                                                    target_category=[m.category]).maps[0]
                    fig['sanity_rho'] = spearman(m.cam_input, rand.cam_input)
                self._save_map(index, key, m.cam)
                if self.work_dir:
                    fig['picture'] = self._picture(
                        f'{index:06d}_{slug(key)}',
                        explainer.visualizer.draw_cam(sample.image, m.cam, 0.5,
                                                      result.seen_mask))
                record['maps'][key] = fig
        return record

    def _faithfulness(self, score_fn, inputs, cams, targets, scores, index, fig) -> None:
        """The faithfulness groups, one value per target (lists for detectors)."""
        if not len(targets):
            return
        one = self.task == 'classification'  # one map per image: scalars, not per-box lists

        def put(name: str, values: np.ndarray) -> None:
            fig[name] = float(values[0]) if one else [float(v) for v in values]

        if 'deletion' in self.groups:
            dels, inss = faith.deletion_insertion(score_fn, inputs, cams, targets, self.steps)
            put('deletion_auc', dels)
            put('insertion_auc', inss)
        if 'confidence' in self.groups:
            drop, inc = faith.confidence_change(score_fn, inputs, cams, targets, scores)
            put('average_drop', drop)
            put('increase', inc)
        if 'road' in self.groups:
            put('road', faith.road(score_fn, inputs, cams, targets, self.road_percentiles,
                                   seed=index))

    # -- detectors ------------------------------------------------------------------------
    def _detection(self, sample) -> dict:
        index = self._index(sample)
        gt = sample.data_sample.gt_instances if 'gt_instances' in sample.data_sample else None
        gt_boxes = gt.bboxes.cpu().numpy().reshape(-1, 4) if gt is not None else np.zeros((0, 4))
        gt_labels = gt.labels.cpu().numpy() if gt is not None else np.zeros(0, int)
        record = dict(index=index, img_path=sample.path, gt_boxes=gt_boxes.round(2).tolist(),
                      gt_labels=gt_labels.tolist(), maps={})
        if self.work_dir:
            record['picture'] = self._picture(f'{index:06d}', sample.image)
        for key, (explainer, random_explainer) in self.explainers.items():
            result = explainer.explain(sample)
            dets = result.detections
            fig = dict(boxes=len(dets), scores=dets.scores.round(4).tolist(),
                       labels=dets.labels.tolist(), bboxes=dets.bboxes.round(2).tolist())
            if 'localisation' in self.groups:
                self._own_boxes(result, fig)
                matched = match_detections(dets.bboxes, dets.labels, gt_boxes, gt_labels)
                fig['matched'] = [float(j >= 0) for j in matched]
                per_box = [dict() for _ in matched]
                for i, j in enumerate(matched):
                    if j >= 0:
                        self._localisation(result.box_maps[i], gt_boxes[j:j + 1], per_box[i])
                for name in ('pointing_strict', *[f'pointing_{t:g}px' for t in self.tolerances],
                             'energy_ratio'):
                    fig[name] = [b[name] for b in per_box if name in b]
            if len(dets):
                geometry = sample.geometry
                # Faithfulness is measured on the network input, where the model reads.
                to_input = [_to_input(m, geometry, sample.inputs.shape[-2:])
                            for m in result.box_maps]
                scorer = explainer.adapter.box_scores(dets, 'confidence')
                self._faithfulness(scorer, sample.inputs, np.stack(to_input),
                                   list(range(len(dets))), dets.scores, index, fig)
                if random_explainer is not None:
                    rand = random_explainer.input_maps(sample, dets)
                    fig['sanity_rho'] = [spearman(a, b) for a, b in zip(to_input, rand)]
            self._save_map(index, key, result.combined)
            if self.work_dir:
                fig['picture'] = self._picture(f'{index:06d}_{slug(key)}',
                                               explainer.draw(result))
            record['maps'][key] = fig
        return record

    def _own_boxes(self, result, fig: dict) -> None:
        """Each detection's map against its own box (what tools/eval_boxam.py measured)."""
        dets = result.detections
        fig['peak_in_own_box'] = []
        for t in self.tolerances:
            fig[f'peak_in_own_box_{t:g}px'] = []
        fig['peak_chance'] = []
        for box_map, box in zip(result.box_maps, dets.bboxes):
            xy = peak(box_map)
            fig['peak_in_own_box'].append(float(point_in_box(xy, box)))
            for t in self.tolerances:
                fig[f'peak_in_own_box_{t:g}px'].append(float(point_in_box(xy, box, t)))
            x1, y1, x2, y2 = box
            fig['peak_chance'].append(float((x2 - x1) * (y2 - y1) / box_map.size))
        if len(dets) and result.combined.sum() > 0:
            fig['energy_ratio_detections'] = energy_ratio(result.combined, dets.bboxes)

    # -- rank 0 ---------------------------------------------------------------------------
    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        self.records = sorted(results, key=lambda r: r['index'])
        self.summary = summarise(self.records)
        return {f'{key}/{name}': fig['mean'] for key, figs in self.summary.items()
                for name, fig in figs.items() if isinstance(fig, dict) and 'mean' in fig}


#: Figures that are not summarised as means (per-box bookkeeping, the picture).
_NOT_FIGURES = {'category', 'score', 'scores', 'labels', 'bboxes', 'picture'}


def summarise(records: Sequence[dict]) -> Dict[str, dict]:
    """Per method key: every figure's mean and 95 % interval over the images (detectors:
    over the boxes), the sanity verdict, and the count of images."""
    values: Dict[str, Dict[str, list]] = {}
    for rec in records:
        for key, figs in rec['maps'].items():
            out = values.setdefault(key, {})
            for name, v in figs.items():
                if name in _NOT_FIGURES:
                    continue
                out.setdefault(name, []).extend(v if isinstance(v, list) else [v])
    summary = {}
    for key, figs in values.items():
        s = {name: mean_ci(v) for name, v in figs.items() if name != 'boxes'}
        s['images'] = sum(1 for r in records if key in r['maps'])
        if 'boxes' in figs:
            s['boxes'] = int(sum(figs['boxes']))
        if 'sanity_rho' in s:
            rho = s['sanity_rho']['mean']
            s['sanity'] = 'pass' if rho < SANITY_THRESHOLD else 'FAIL'
        summary[key] = s
    return summary


def _to_input(cam: np.ndarray, geometry, input_hw) -> np.ndarray:
    """An original-image map back on the network input (the inverse of to_original)."""
    (sx, sy), (tx, ty) = geometry.scale, geometry.offset
    matrix = np.array([[sx, 0, tx], [0, sy, ty]], np.float64)
    h, w = int(input_hw[0]), int(input_hw[1])
    return cv2.warpAffine(cam.astype(np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
