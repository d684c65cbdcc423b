"""The box-AM method table: what each ``--method`` of box AM computes, and from which score.

The names are those of mmyolo's ``demo/boxam_vis_demo.py`` and mean what they mean there: in
box AM, ``gradcam`` and ``gradcam++`` keep the gradient per pixel (mmyolo's ``SpatialBaseCAM``,
ODAM), because a detection's score has a gradient only around its own prior. Classification's
spatially averaged versions stay available as ``gradcam-avg`` and ``gradcam++-avg``.

The command line's choices, the hook's validation, the error messages and the tests all read
this table; nothing else lists box-AM methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, XGradCAM

from mmcam.cams.ablation import BoxAblationCAM
from mmcam.cams.eigen import EigenCAM
from mmcam.cams.methods import _key
from mmcam.cams.spatial import SpatialGradCAM, SpatialGradCAMPlusPlus
from mmcam.utils.errors import InputError

#: What a box map can explain: the class score, the box's regression outputs, or both.
EXPLAIN_CHOICES = ('class', 'box', 'both')


@dataclass(frozen=True)
class BoxMethod:
    """One box-AM method.

    Attributes:
        name: the name users type (lower case, as in mmyolo's demo).
        cam: the CAM class that computes the map.
        score: the box score it explains: ``logit`` (log-odds of the confidence, never
            saturates), ``confidence`` (the probability, positive, as AblationCAM's relative
            drop needs) or None (EigenCAM: no score, the same map for every box).
        summary: one line for ``--help`` and the docs.
        several_maps: it can run on a layer that outputs several maps (``neck``: resized and
            stacked), since it needs neither one gradient tensor nor to replace the output.
        masks_input: it multiplies the input by each channel (its memory grows with them).
    """
    name: str
    cam: type
    score: Optional[str]
    summary: str
    several_maps: bool = False
    masks_input: bool = False

    @property
    def uses_gradients(self) -> bool:
        """Gradient methods: one forward pass per image and one backward pass per box."""
        return self.score == 'logit' and self.cam is not ScoreCAM


_TABLE = (
    BoxMethod('gradcam', SpatialGradCAM, 'logit',
              'gradient x activation per pixel, summed over channels (mmyolo, ODAM)'),
    BoxMethod('gradcam++', SpatialGradCAMPlusPlus, 'logit',
              "Grad-CAM++'s alpha-weighted positive gradients x activation, per pixel"),
    BoxMethod('gradcam-avg', GradCAM, 'logit',
              'classification Grad-CAM: gradients averaged over the level, per channel'),
    BoxMethod('gradcam++-avg', GradCAMPlusPlus, 'logit',
              'classification Grad-CAM++: weights summed over the level, per channel'),
    BoxMethod('xgradcam', XGradCAM, 'logit', 'XGrad-CAM: activation-normalised channel weights'),
    BoxMethod('layercam', LayerCAM, 'logit', 'positive gradient x activation, per pixel'),
    BoxMethod('eigencam', EigenCAM, None,
              'first principal component of the activations (no score: one map for all boxes)',
              several_maps=True),
    BoxMethod('ablationcam', BoxAblationCAM, 'confidence',
              'relative drop of the confidence when each channel is zeroed'),
    BoxMethod('scorecam', ScoreCAM, 'logit', 'score of the input masked by each channel',
              several_maps=True, masks_input=True),
)
BOX_METHODS: Dict[str, BoxMethod] = {m.name: m for m in _TABLE}
#: Other names for the same methods.
BOX_ALIASES = {'odam': 'gradcam'}
_BY_KEY = {_key(name): method for name, method in BOX_METHODS.items()}
_BY_KEY.update({_key(alias): BOX_METHODS[name] for alias, name in BOX_ALIASES.items()})


def box_method_names() -> List[str]:
    """The box-AM method names, in the table's order."""
    return list(BOX_METHODS)


def gradient_box_methods() -> List[str]:
    """The names of the box-AM methods that use gradients (all that ``--explain`` accepts)."""
    return [name for name, method in BOX_METHODS.items() if method.uses_gradients]


def get_box_method(name: str) -> BoxMethod:
    """The method for a name typed by a user (case and punctuation ignored, ``odam`` works)."""
    method = _BY_KEY.get(_key(name))
    if method is None:
        raise InputError(f'--method {name!r} is not supported for box AM; expected one of '
                         f'{", ".join(box_method_names())} (odam = gradcam).')
    return method


def check_explain(method: BoxMethod, explain: str) -> None:
    """Refuse ``--explain`` values a method cannot compute."""
    if explain not in EXPLAIN_CHOICES:
        raise InputError(f'--explain {explain!r} is unknown; expected one of '
                         f'{", ".join(EXPLAIN_CHOICES)}.')
    if explain != 'class' and not method.uses_gradients:
        raise InputError(f'--explain {explain} needs a gradient method, and {method.name} uses '
                         f'none; use one of {", ".join(gradient_box_methods())}.')
