"""Classification CAM from Python: load a classifier once, explain many images.

Example::

    from mmcam.apis import CAMInferencer
    inferencer = CAMInferencer('resnet50_8xb32_in1k.py', 'resnet50.pth')
    result = inferencer('cat.jpg', methods=['GradCAM', 'EigenCAM'])[0]
    result.maps[0].cam        # float32 H x W of the original image, values in [0, 1]
    picture = inferencer.draw(result)   # RGB uint8, methods side by side

Data flow: LoadedModel (config, checkpoint, test pipeline) -> ClassifierLogits (adapter) ->
grad-cam method on the target layers (tokens reshaped by TokenReshape) -> InputGeometry (back
onto the original image) -> CAMVisualizer (overlay) -> tile_panels (one picture).
"""
from __future__ import annotations

import warnings
from contextlib import ExitStack, contextmanager
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from pytorch_grad_cam import GuidedBackpropReLUModel
from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUasModule
from pytorch_grad_cam.utils.find_layers import replace_all_layer_type_recursive
from pytorch_grad_cam.utils.image import deprocess_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from mmcam.apis.model_loader import InputError, LoadedModel
from mmcam.cams.box_maps import finite_maps
from mmcam.cams.layers import (backbone_extra_tokens, default_target_layer, preview_rows,
                               resolve_layers)
from mmcam.cams.methods import (cam_session, get_method, needs_weight_graph,
                                supports_aug_smooth)
from mmcam.cams.reshape import TokenReshape, patch_grid_probe
from mmcam.models.classifier import ClassifierLogits
from mmcam.models.state import model_state_restored
from mmcam.structures import CAMMap, CAMResult, ImageLike, Sample, SkippedImage
from mmcam.utils.errors import first_line
from mmcam.visualization.cam_visualizer import CAMVisualizer, cam_picture
from mmcam.visualization.panels import tile_panels

def _out_of_memory(err: BaseException) -> bool:
    """Whether an error is the device (or the CPU allocator) running out of memory."""
    text = str(err).lower()
    return isinstance(err, torch.OutOfMemoryError) or 'out of memory' in text or \
        "can't allocate memory" in text


@contextmanager
def activation_gradients_only(model: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
    """Freeze the weights while explaining: CAMs need gradients of activations, not of
    weights, and skipping the weight gradients saves about a third of each backward pass."""
    flags = [(p, p.requires_grad) for p in model.parameters()] if enabled else []
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        # Weight gradients left by a method (SESS keeps them) would be stale for the next
        # method and hold memory; grad-cam's zero_grad cannot detach them in place either.
        model.zero_grad(set_to_none=True)


class CAMInferencer:
    """Class activation maps for an mmpretrain classifier, loaded once.

    Args:
        config: mmpretrain config file or Config, a :class:`LoadedModel`, or a built
            classifier.
        checkpoint: checkpoint file (``None`` keeps the random init; for tests only).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
        cfg_options: overrides merged into the config.
        allow_unsafe_checkpoint: allow full pickle loading (only for files you trust).
        target_layers: layer names in any form users type; default as mmpretrain's docs say.
        num_extra_tokens: class/distillation tokens of a ViT-like backbone; ``None`` reads the
            backbone's own value, ``0`` means none.
    """

    def __init__(self,
                 config,
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 cfg_options: Optional[dict] = None,
                 allow_unsafe_checkpoint: bool = False,
                 target_layers: Optional[Sequence[str]] = None,
                 num_extra_tokens: Optional[int] = None) -> None:
        # A LoadedModel is taken as it is (the hooks wrap the Runner's model that way), and
        # a built classifier is wrapped in mmpretrain's scope.
        self.loaded = LoadedModel.of(config, checkpoint, device, cfg_options,
                                     allow_unsafe_checkpoint, scope='mmpretrain')
        if self.loaded.task != 'classification':
            raise InputError(f'The config builds a {self.loaded.task} model; vis_cam explains '
                             'mmpretrain classifiers. For detectors use the box-AM tool.')
        self.classifier = self.loaded.model
        self.model = ClassifierLogits(self.classifier)
        self.device = self.loaded.device
        self.num_extra_tokens = num_extra_tokens
        if target_layers:
            self.target_layer_names = list(target_layers)
            self.target_layer_reason = 'given'
        else:
            with model_state_restored(self.classifier):  # the probe pass runs in eval mode
                name, reason = default_target_layer(self.classifier, num_extra_tokens,
                                                    self._probe_inputs())
            self.target_layer_names, self.target_layer_reason = [name], f'default: {reason}'
        self.target_layers = resolve_layers(self.classifier, self.target_layer_names)
        self.reshape = TokenReshape(', '.join(self.target_layer_names), num_extra_tokens,
                                    backbone_extra_tokens(self.classifier.backbone))
        self.visualizer = CAMVisualizer(name=f'mmcam_cam_{id(self)}')

    def _probe_inputs(self) -> torch.Tensor:
        """A network input of the test pipeline's size (a grey 224 x 224 image through it),
        for the probe pass that finds which layers still have spatial outputs."""
        if self.loaded.pipeline is None:  # a Runner's model (the hooks): no pipeline of its own
            return torch.zeros((1, 3, 224, 224), device=self.loaded.device)
        grey = np.full((224, 224, 3), 127, dtype=np.uint8)
        return self.loaded.prepare([grey])[0].inputs

    # -- model facts --------------------------------------------------------------------
    @property
    def classes(self) -> Sequence[str]:
        return self.loaded.classes

    @property
    def num_classes(self) -> Optional[int]:
        n = getattr(self.classifier.head, 'num_classes', None)
        return int(n) if n else (len(self.classes) or None)

    def class_name(self, index: int) -> str:
        return self.classes[index] if index < len(self.classes) else f'class {index}'

    def parse_categories(self, categories: Optional[Sequence[Union[int, str]]]
                         ) -> Optional[List[int]]:
        """Category indices or class names -> indices, checked against the model's classes."""
        if categories is None or len(categories) == 0:
            return None
        out = []
        n = self.num_classes
        for c in categories:
            if isinstance(c, str) and not c.lstrip('-').isdigit():
                if c not in self.classes:
                    raise InputError(f'--target-category {c!r} is not a class name of this '
                                     f'model; expected an index 0..{(n or 1) - 1} or one of '
                                     f'{list(self.classes)[:10]}...')
                out.append(list(self.classes).index(c))
                continue
            c = int(c)
            if n is not None and not 0 <= c < n:
                raise InputError(f'--target-category {c} is out of range: the model has {n} '
                                 f'classes, expected 0..{n - 1}.')
            out.append(c)
        return out

    def preview(self, image: Optional[ImageLike] = None) -> List[tuple]:
        """``(name, type, output shape)`` of every layer (shapes for ``image`` if given)."""
        inputs = self.loaded.prepare([image])[0].inputs if image is not None else None
        return preview_rows(self.classifier, inputs)

    # -- running ------------------------------------------------------------------------
    def __call__(self, images: Union[ImageLike, Sequence[ImageLike]],
                 **kwargs) -> List[CAMResult]:
        """Maps for one image or many (see :meth:`run` for the options); errors raise."""
        if isinstance(images, (str, np.ndarray)):
            images = [images]
        return [r for r in self.run(images, skip_errors=False, **kwargs)]

    def run(self,
            images: Iterable[ImageLike],
            methods: Union[str, Sequence[str]] = 'GradCAM',
            target_category: Optional[Sequence[Union[int, str]]] = None,
            eigen_smooth: bool = False,
            aug_smooth: bool = False,
            guided: bool = False,
            batch_size: int = 4,
            skip_errors: bool = True) -> Iterator[Union[CAMResult, SkippedImage]]:
        """Yield one :class:`CAMResult` per image, in order, batch by batch.

        Args:
            methods: one or more grad-cam method names (case-insensitive).
            target_category: indices or class names; default: the predicted class.
            eigen_smooth / aug_smooth: grad-cam's smoothing (first principal component of the
                weighted activations / test-time augmentation).
            guided: also compute guided backprop (for guided Grad-CAM pictures).
            batch_size: images per forward pass.
            skip_errors: yield :class:`SkippedImage` for an unreadable image instead of
                raising (errors in the model or options still raise).
        """
        methods = [methods] if isinstance(methods, str) else list(methods)
        for m in methods:
            get_method(m)  # fail before any work on an unknown name
        categories = self.parse_categories(target_category)
        pending: List[Sample] = []
        for image in images:
            try:
                sample = self.loaded.prepare([image])[0]
            except InputError as err:
                if not skip_errors:
                    raise
                yield SkippedImage(image if isinstance(image, str) else '<array>', str(err))
                continue
            if pending and (len(pending) >= batch_size
                            or pending[0].inputs.shape != sample.inputs.shape):
                yield from self._run_batch_or_smaller(pending, methods, categories,
                                                      eigen_smooth, aug_smooth, guided,
                                                      skip_errors)
                pending = []
            pending.append(sample)
        if pending:
            yield from self._run_batch_or_smaller(pending, methods, categories, eigen_smooth,
                                                  aug_smooth, guided, skip_errors)

    def _run_batch_or_smaller(self, samples: List[Sample], methods: List[str],
                              categories: Optional[List[int]], eigen_smooth: bool,
                              aug_smooth: bool, guided: bool, skip_errors: bool
                              ) -> Iterator[Union[CAMResult, SkippedImage]]:
        """A batch that runs out of memory is retried one image at a time; an image that runs
        out alone is skipped with the reason (the run goes on)."""
        try:
            results = list(self._run_batch(samples, methods, categories, eigen_smooth,
                                           aug_smooth, guided))
        except (torch.OutOfMemoryError, RuntimeError) as err:
            if not _out_of_memory(err):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(samples) > 1:
                warnings.warn(f'a batch of {len(samples)} images ran out of memory on '
                              f'{self.device}; retried one image at a time (a smaller '
                              '--batch-size avoids the retries)')
                for sample in samples:
                    yield from self._run_batch_or_smaller([sample], methods, categories,
                                                          eigen_smooth, aug_smooth, guided,
                                                          skip_errors)
                return
            if not skip_errors:
                raise
            yield SkippedImage(samples[0].path or '<array>',
                               f'out of memory on {self.device} ({first_line(err, 120)}); expected '
                               'a smaller image or layer, or --device cpu')
            return
        yield from results

    def explain(self, image: Union[ImageLike, Sample], methods: Union[str, Sequence[str]] =
                'GradCAM', target_category: Optional[Sequence[Union[int, str]]] = None,
                eigen_smooth: bool = False, aug_smooth: bool = False,
                guided: bool = False) -> CAMResult:
        """Maps for one image, or a sample that is already prepared (the hooks make them);
        the options as for :meth:`run`."""
        sample = image if isinstance(image, Sample) else self.loaded.prepare([image])[0]
        methods = [methods] if isinstance(methods, str) else list(methods)
        result, = self._run_batch([sample], methods, self.parse_categories(target_category),
                                  eigen_smooth, aug_smooth, guided)
        return result

    def _probe(self, inputs: torch.Tensor):
        """A plain forward: logits, and each target layer's output checked by the reshape."""
        def check(module, args, output):
            self.reshape(output)  # raises the one-line error on a bad token layout
        with ExitStack() as stack:
            stack.enter_context(patch_grid_probe(self.classifier.backbone, [self.reshape],
                                                 inputs.shape[-2:]))
            for layer in self.target_layers:
                handle = layer.register_forward_hook(check)
                stack.callback(handle.remove)
            stack.enter_context(torch.no_grad())
            return self.model(inputs)

    def _method_maps(self, name: str, inputs: torch.Tensor, targets: Optional[list],
                     eigen_smooth: bool, aug_smooth: bool) -> Tuple[np.ndarray, torch.Tensor]:
        """One method on a batch: its maps, and the model's output in its forward pass
        (``targets`` None: each row's predicted class)."""
        with cam_session(name, self.model, self.target_layers, self.reshape,
                         token_layers=self.reshape.kind == 'tokens') as cam, \
                patch_grid_probe(self.classifier.backbone, [self.reshape], inputs.shape[-2:]), \
                activation_gradients_only(self.model, not needs_weight_graph(name)):
            kwargs = dict(eigen_smooth=eigen_smooth)
            if aug_smooth:
                if not supports_aug_smooth(cam):
                    raise InputError(f'--aug-smooth is not supported by {type(cam).__name__}; '
                                     'expected a BaseCAM method such as GradCAM. Leave out '
                                     '--aug-smooth for this method.')
                kwargs['aug_smooth'] = True
            # The input requires grad so the graph exists although no weight does.
            try:
                maps = cam(input_tensor=inputs.detach().requires_grad_(True), targets=targets,
                           **kwargs)
            except InputError:
                raise
            except Exception as err:  # a method that does not fit this model's layers
                if _out_of_memory(err):
                    raise  # retried with smaller batches by _run_batch_or_smaller
                first = (str(err).strip().splitlines() or [''])[0][:200]
                raise InputError(
                    f'--method {type(cam).__name__} failed on {type(self.classifier).__name__}'
                    f' at {", ".join(self.target_layer_names)} ({type(err).__name__}: '
                    f'{first}); expected a method that fits this model: try GradCAM or '
                    'another --target-layers (--debug shows the traceback).') from err
            outputs = getattr(cam, 'outputs', None)
            return (np.asarray(maps, dtype=np.float32),
                    outputs.detach() if torch.is_tensor(outputs) else outputs)

    def _run_batch(self, samples: List[Sample], methods: List[str],
                   categories: Optional[List[int]], eigen_smooth: bool, aug_smooth: bool,
                   guided: bool) -> Iterator[CAMResult]:
        with model_state_restored(self.classifier):  # eval mode, given back as it was
            yield from self._explain_batch(samples, methods, categories, eigen_smooth,
                                           aug_smooth, guided)

    def _explain_batch(self, samples: List[Sample], methods: List[str],
                       categories: Optional[List[int]], eigen_smooth: bool, aug_smooth: bool,
                       guided: bool) -> Iterator[CAMResult]:
        inputs = torch.cat([s.inputs for s in samples])
        per_method = {}
        first = get_method(methods[0])
        # A one-forward gradient method's own pass gives the scores too, so no probe pass runs
        # before it (not with aug_smooth, whose last pass is an augmented copy).
        one_pass = not aug_smooth and getattr(first, 'one_pass_scores', False)
        logits = None if one_pass else self._probe(inputs)
        if categories is None and logits is None:  # targets: each image's predicted class
            per_method[first.__name__], logits = self._method_maps(
                methods[0], inputs, None, eigen_smooth, False)
        if categories is None:
            predicted = self.model.scores(logits).argmax(-1).tolist()
            rows = [(i, int(c)) for i, c in enumerate(predicted)]
        else:
            rows = [(i, c) for i in range(len(samples)) for c in categories]
        # One row per (image, category): all of them explained in one grad-cam call.
        row_inputs = inputs[[i for i, _ in rows]]
        targets = [ClassifierOutputTarget(c) for _, c in rows]
        if logits is None:  # categories given: each image's scores from its first row
            per_method[first.__name__], row_logits = self._method_maps(
                methods[0], row_inputs, targets, eigen_smooth, False)
            logits = row_logits[[len(categories) * i for i in range(len(samples))]]
        scores = self.model.scores(logits).cpu().numpy()
        for name in methods:
            if get_method(name).__name__ not in per_method:
                per_method[get_method(name).__name__] = self._method_maps(
                    name, row_inputs, targets, eigen_smooth, aug_smooth)[0]
        guided_maps = {}
        if guided:
            gb_model = GuidedBackpropReLUModel(self.model, self.device)
            with activation_gradients_only(self.model):
                try:
                    for r, (i, c) in enumerate(rows):
                        x = row_inputs[r:r + 1].detach().clone()
                        gb = np.asarray(gb_model(x, target_category=c), np.float32)
                        guided_maps[r] = gb[..., ::-1].copy() if self._input_is_bgr else gb
                finally:
                    # grad-cam swaps the ReLUs back only when the pass succeeds.
                    replace_all_layer_type_recursive(self.model, GuidedBackpropReLUasModule,
                                                     torch.nn.ReLU())
        results = []
        for i, sample in enumerate(samples):
            pred = int(scores[i].argmax())
            results.append(CAMResult(
                path=sample.path, image=sample.image, input_image=self.input_image(sample),
                geometry=sample.geometry, pred_label=pred, pred_score=float(scores[i, pred]),
                pred_class=self.class_name(pred), scores=scores[i]))
        seen = [res.seen_mask for res in results]
        for r, (i, c) in enumerate(rows):
            res = results[i]
            for name, maps in per_method.items():
                cam_input = np.clip(finite_maps(maps[r], f'The {name} map'), 0.0, 1.0)
                cam = np.clip(res.geometry.to_original(cam_input), 0.0, 1.0)
                # Interpolation bleeds a little over the crop border: the model saw nothing
                # there, so the map is 0 wherever the pipeline cut the image away.
                cam = (cam * seen[i]).astype(np.float32)
                res.maps.append(CAMMap(name, c, self.class_name(c), float(scores[i, c]), cam,
                                       cam_input))
            if r in guided_maps:
                res.guided[c] = guided_maps[r]
        yield from results

    def input_image(self, sample: Sample) -> np.ndarray:
        """The network input as a picture: normalisation undone, RGB uint8."""
        return self.loaded.input_image(sample.inputs)

    @property
    def _input_is_bgr(self) -> bool:
        # mmcam feeds BGR; the data_preprocessor flips to RGB only when told to (the same
        # test as LoadedModel.input_image: mmengine's _channel_conversion, mmpretrain's to_rgb).
        pre = self.classifier.data_preprocessor
        return not (getattr(pre, '_channel_conversion', False) or getattr(pre, 'to_rgb', False))

    # -- pictures -----------------------------------------------------------------------
    def draw(self, result: CAMResult, show_input: bool = False, alpha: float = 0.5
             ) -> np.ndarray:
        """One RGB picture: a row per category, the methods side by side.

        Maps are drawn on the original image, with pixels the pipeline cropped away greyed
        out; ``show_input`` draws on the network input instead. Guided backprop and guided
        Grad-CAM (guided backprop x the first method's map) follow when computed.
        """
        seen = None if show_input else result.seen_mask
        base = result.input_image if show_input else result.image
        by_category: Dict[int, List[CAMMap]] = {}
        for m in result.maps:
            by_category.setdefault(m.category, []).append(m)
        rows = []
        for category, maps in by_category.items():
            row = []
            for m in maps:
                cam = m.cam_input if show_input else m.cam
                title = f'{m.method} | {m.class_name} ({m.score:.2f})'
                row.append((title, cam_picture(base, cam, alpha, seen)))
            if category in result.guided:
                gb = result.guided[category]
                guided_cam = gb * maps[0].cam_input[..., None]
                for title, img in (('Guided backprop', gb),
                                   (f'Guided {maps[0].method}', guided_cam)):
                    pic = deprocess_image(img)
                    if not show_input:
                        # Cropped-away pixels drawn as in draw_cam: the image, greyed.
                        grey = (result.image.mean(axis=2, keepdims=True) * 0.5).astype(np.uint8)
                        pic = np.where(seen[..., None], result.geometry.to_original(pic), grey)
                    row.append((f'{title} | {maps[0].class_name}', np.ascontiguousarray(pic)))
            rows.append(row)
        return tile_panels(rows)
