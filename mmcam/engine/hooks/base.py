"""What every mmcam hook shares: when to draw, leaving the model as it was, and writing.

A subclass only says how to turn a batch into pictures (:meth:`ExplainHook.explain`). This base
decides which iterations and how many samples, runs the explanation with gradients enabled
and the model's state restored afterwards (mode, ``requires_grad``, ``.grad``), turns any
failure into one logged warning, and sends the pictures through ``runner.visualizer`` (so the
configured backends, local files or TensorBoard, receive them). Under distributed testing each
rank explains its own samples; the pictures are gathered at the end of the epoch and written
by rank 0 only.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
from mmengine.dist import all_gather_object, get_rank, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmcam.models.state import model_state_restored
from torch import nn

Picture = Tuple[str, np.ndarray]  # (name, RGB uint8 image)
PHASES = ('val', 'test')


def dataset_meta(runner) -> dict:
    """Class names of the data being evaluated (the model may not carry them)."""
    for loop in ('test_loop', 'val_loop'):
        loop = getattr(runner, f'_{loop}', None)
        dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
        if dataset is not None and getattr(dataset, 'metainfo', None):
            return dict(dataset.metainfo)
    return {}


class ExplainHook(Hook):
    """Base of the visualization hooks; see the module docstring.

    Args:
        phases: which loops draw: ``'val'``, ``'test'`` or both.
        interval: draw every ``interval`` iterations of a loop.
        max_samples: at most this many samples per epoch (per rank).
        alpha: opacity of the maps drawn over the image.
    """
    priority = 'LOW'
    kind = 'explain'  # prefix of picture names

    def __init__(self,
                 phases: Sequence[str] = PHASES,
                 interval: int = 1,
                 max_samples: int = 4,
                 alpha: float = 0.5) -> None:
        phases = (phases, ) if isinstance(phases, str) else tuple(phases)
        unknown = set(phases) - set(PHASES)
        if unknown:
            raise ValueError(f'phases={phases!r}: {sorted(unknown)} unknown; expected a '
                             f'subset of {PHASES}.')
        if interval < 1 or max_samples < 0:
            raise ValueError(f'interval={interval}, max_samples={max_samples}: expected '
                             'interval >= 1 and max_samples >= 0.')
        self.phases, self.interval, self.max_samples, self.alpha = (phases, interval,
                                                                    max_samples, alpha)
        self._done = 0
        self._pictures: List[Picture] = []
        self._warned: set = set()

    # -- subclass API ---------------------------------------------------------------------
    def explain(self, model: nn.Module, data_batch: dict, outputs: Sequence,
                indices: Sequence[int], runner) -> List[Picture]:
        """Pictures for the samples ``indices`` of ``data_batch``; names without phase/step."""
        raise NotImplementedError

    # -- Runner events --------------------------------------------------------------------
    def before_val_epoch(self, runner) -> None:
        self._start()

    def before_test_epoch(self, runner) -> None:
        self._start()

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._explain_batch(runner, 'val', batch_idx, data_batch, outputs)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._explain_batch(runner, 'test', batch_idx, data_batch, outputs)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._write(runner, 'val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._write(runner, 'test')

    # -- internals ------------------------------------------------------------------------
    def _start(self) -> None:
        self._done = 0
        self._pictures = []

    # Not named _after_iter: that is mmengine's funnel, which after_train_iter calls with
    # mode='train'; shadowing it broke every training run with these hooks configured.
    def _explain_batch(self, runner, phase: str, batch_idx: int, data_batch, outputs) -> None:
        if (phase not in self.phases or batch_idx % self.interval
                or self._done >= self.max_samples or not data_batch):
            return
        batch_size = len(data_batch.get('data_samples') or data_batch['inputs'])
        indices = list(range(min(batch_size, self.max_samples - self._done)))
        self._done += len(indices)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        try:
            with model_state_restored(model):
                pictures = self.explain(model, data_batch, outputs, indices, runner)
        except Exception as exc:  # a drawing problem must never stop validation
            reason = f'{type(exc).__name__}: {exc}'
            if reason not in self._warned:
                self._warned.add(reason)
                runner.logger.warning(f'{type(self).__name__} skipped samples of {phase} '
                                      f'iteration {batch_idx}: {reason}')
            return
        rank = get_rank()
        for name, image in pictures:
            self._pictures.append((f'{self.kind}_{phase}_r{rank}_i{batch_idx}_{name}', image))

    def _write(self, runner, phase: str) -> None:
        if phase not in self.phases:
            return
        pictures = self._pictures
        if get_world_size() > 1:  # every rank reaches the epoch end, so this cannot hang
            pictures = [p for part in all_gather_object(pictures) for p in part]
        if is_main_process():
            step = runner.epoch if phase == 'val' else 0
            for name, image in pictures:
                runner.visualizer.add_image(name, image, step=step)
        self._pictures = []
