"""Transformer methods: maps read from the attention itself, not from a target layer.

* :class:`AttentionRollout` (Abnar & Zuidema, 2020): per block, the head-averaged attention
  plus the identity (the residual path), rows renormalised, multiplied through the blocks.
  Not class-specific: every category gets the same map.
* :class:`GradRollout` (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model
  Explainability"): per block, the head mean of ``relu(dS/dA * A)`` for the score ``S`` of
  the category, accumulated as ``R <- R + A_bar @ R`` from ``R = I``. Class-specific.

Both read the rows of the tokens that reach the head: the class token (DeiT: the mean of the
class and distillation rows, as its head averages the two), or, for average-pooled models, the
mean of the patch rows; the columns of the patch tokens form the map.

The attention probabilities are captured from mmpretrain's ``MultiheadAttention`` (ViT, DeiT,
T2T-ViT, ...) by replacing its ``scaled_dot_product_attention`` attribute for the duration of
one call (:func:`captured_attention`): the fused kernel still produces the block's output, so
the logits are bitwise those of the model, and the attention is recomputed explicitly next to
it with the gradient routed through the explicit copy. The attribute is put back afterwards,
so later calls run the fused kernel alone.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from torch import nn

from mmcam.cams.reshape import TokenReshape, patch_grid_probe
from mmcam.utils.errors import OptionError

_SDPA = 'scaled_dot_product_attention'


def global_attention_modules(model: nn.Module) -> List[nn.Module]:
    """mmpretrain ``MultiheadAttention`` modules in ``model`` (every token attends to all).

    Subclasses with a forward of their own are left out: Twins' subsampled attention, for
    one, attends to a pooled sequence, so its maps are not token x token.
    """
    from mmpretrain.models.utils.attention import MultiheadAttention
    return [m for m in model.modules()
            if isinstance(m, MultiheadAttention) and type(m).forward is MultiheadAttention.forward
            and callable(getattr(m, _SDPA, None))]


def _attention_logits(fn: Callable, q: torch.Tensor, k: torch.Tensor,
                      kwargs: dict) -> torch.Tensor:
    """``q k^T`` scaled as the module's own attention function scales it.

    PyTorch's kernel multiplies by ``scale`` (default ``d ** -0.5``); mmpretrain's Python
    version, which ``qk_scale`` selects, divides by it (default ``d ** 0.5``).
    """
    from mmpretrain.models.utils.attention import scaled_dot_product_attention_pyimpl
    base, kw = fn, dict(kwargs)
    if isinstance(fn, functools.partial):
        base, kw = fn.func, {**fn.keywords, **kwargs}
    scores = q @ k.transpose(-2, -1)
    if base is scaled_dot_product_attention_pyimpl:
        return scores / (kw.get('scale') or q.shape[-1] ** 0.5)
    return scores * (kw.get('scale') or q.shape[-1] ** -0.5)


@dataclass
class AttentionRecord:
    """What one forward pass left: each block's attention (B, heads, N, N), in call order."""
    maps: List[torch.Tensor] = field(default_factory=list)


@contextmanager
def captured_attention(modules: Sequence[nn.Module]) -> Iterator[AttentionRecord]:
    """Record the attention probabilities of ``modules`` during the forward passes inside.

    The block output is still the module's own (fused) attention, so the model computes
    exactly what it computes without the capture; the explicit probabilities carry the
    gradient instead (output = fused + (explicit - explicit.detach())), so
    ``torch.autograd.grad(score, record.maps)`` is dS/dA. Restored on exit, also on errors.
    """
    record = AttentionRecord()
    originals = []

    def wrap(module: nn.Module, fused: Callable) -> Callable:
        def attention(q, k, v, *args, **kwargs):
            # The fused output is only a value here (the gradient takes the explicit path):
            # without a graph it keeps no buffers for a backward pass that never comes.
            with torch.no_grad():
                out = fused(q, k, v, *args, **kwargs)
            mask = kwargs.get('attn_mask', args[0] if args else None)
            logits = _attention_logits(fused, q, k, kwargs)
            if mask is not None:
                logits = logits.masked_fill(~mask, float('-inf')) if mask.dtype == torch.bool \
                    else logits + mask
            probs = logits.softmax(dim=-1)
            record.maps.append(probs)
            if not torch.is_grad_enabled():
                return out
            if not probs.requires_grad:
                # The first block: the graph starts at its attention, since nothing before it
                # is differentiated (the caller's weights may be frozen and its input not).
                probs.requires_grad_(True)
            explicit = probs @ v
            return out + (explicit - explicit.detach())
        return attention

    try:
        for module in modules:
            had_own = _SDPA in vars(module)
            fused = getattr(module, _SDPA)
            originals.append((module, had_own, fused))
            setattr(module, _SDPA, wrap(module, fused))
        yield record
    finally:
        for module, had_own, fused in originals:
            if had_own:
                setattr(module, _SDPA, fused)
            else:
                delattr(module, _SDPA)


def _last_sequence(maps: List[torch.Tensor]) -> List[torch.Tensor]:
    """The blocks of the final token sequence: T2T-ViT's token-to-token attentions run on
    another (longer) sequence first and are left out."""
    n = maps[-1].shape[-1]
    start = len(maps)
    while start > 0 and maps[start - 1].shape[-1] == n:
        start -= 1
    return maps[start:]


def head_rows(backbone: nn.Module, extra: int) -> Optional[slice]:
    """The token rows the head reads: the extra tokens (class, distillation), or ``None``
    for models that average the patch tokens."""
    out_type = getattr(backbone, 'out_type', 'cls_token')
    return slice(0, extra) if extra > 0 and out_type == 'cls_token' else None


def rollout(maps: Sequence[torch.Tensor], grads: Optional[Sequence[torch.Tensor]] = None
            ) -> torch.Tensor:
    """(B, N, N) relevance through the blocks.

    Without ``grads``: Abnar & Zuidema's rollout, prod_l (0.5 * mean_h A_l + 0.5 * I), rows
    renormalised. With ``grads``: Chefer et al.'s rule, R <- R + mean_h relu(dA * A) @ R.
    """
    b, _, n, _ = maps[0].shape
    eye = torch.eye(n, dtype=maps[0].dtype, device=maps[0].device).expand(b, n, n)
    relevance = eye.clone()
    for i, attn in enumerate(maps):
        if grads is None:
            mixed = 0.5 * attn.mean(dim=1) + 0.5 * eye
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
            relevance = mixed @ relevance
        else:
            weighted = (grads[i] * attn).clamp(min=0).mean(dim=1)
            relevance = relevance + weighted @ relevance
    return relevance


class AttentionMethod:
    """Shared plumbing of the rollout methods: capture, token layout, maps on the input.

    Takes grad-cam's constructor and call signature, so the method table, the inferencer and
    the hook use it like any other method; ``target_layers`` are not used (the maps come from
    every attention block).
    """

    #: Whether the map depends on the category (needs a backward pass).
    class_specific = False
    #: As grad-cam's BaseCAM: the model's output of the one forward pass is kept in
    #: ``self.outputs`` (with no targets, each row's predicted class is explained), so a
    #: caller needs no pass of its own for the scores.
    one_pass_scores = True

    def __init__(self, model: nn.Module, target_layers: Optional[Sequence[nn.Module]] = None,
                 reshape_transform: Optional[Callable] = None) -> None:
        self.model = model
        self.outputs: Optional[torch.Tensor] = None
        self.classifier = getattr(model, 'classifier', model)
        self.backbone = getattr(self.classifier, 'backbone', self.classifier)
        self.reshape = reshape_transform if isinstance(reshape_transform, TokenReshape) \
            else TokenReshape('attention', backbone_extra=getattr(
                self.backbone, 'num_extra_tokens', None))
        self.blocks = global_attention_modules(self.backbone)
        if not self.blocks:
            from mmcam.cams.methods import method_names, transformer_method_names
            others = [m for m in method_names() if m not in transformer_method_names()]
            raise OptionError(
                f'--method {type(self).__name__} reads global self-attention (mmpretrain '
                f"MultiheadAttention blocks, as in ViT, DeiT and T2T-ViT), but "
                f'{type(self.backbone).__name__} has none (windowed or no attention); '
                f'expected one of the methods that apply to it: {", ".join(others)}.')

    def __call__(self, input_tensor: torch.Tensor, targets: Optional[Sequence] = None,
                 eigen_smooth: bool = False) -> np.ndarray:
        """(B, H, W) maps in [0, 1] on the network input, one per row of ``input_tensor``."""
        if eigen_smooth:
            raise OptionError(f'--eigen-smooth does not apply to {type(self).__name__} (it '
                              'smooths target-layer activations, which attention methods do '
                              'not use); expected it without --eigen-smooth.')
        relevance, extra, (h, w) = self.relevance(input_tensor, targets)
        rows = head_rows(self.backbone, extra)
        read = relevance[:, rows] if rows is not None else relevance[:, extra:]
        cams = read.mean(dim=1)[:, extra:].reshape(-1, h, w)
        self.reshape.grid_hw, self.reshape.kind = (h, w), 'tokens'
        cams = cams.detach().float().cpu().numpy()
        return scale_cam_image(cams, (input_tensor.shape[-1], input_tensor.shape[-2]))

    def relevance(self, inputs: torch.Tensor, targets: Optional[Sequence]
                  ) -> Tuple[torch.Tensor, int, Tuple[int, int]]:
        """(B, N, N) relevance, the number of extra tokens, and the patch grid."""
        with patch_grid_probe(self.backbone, [self.reshape], inputs.shape[-2:]), \
                captured_attention(self.blocks) as record, \
                torch.set_grad_enabled(self.class_specific):
            logits = self.model(inputs.detach())
            self.outputs = logits.detach()
            if not record.maps:
                raise OptionError(
                    f'--method {type(self).__name__}: no attention block of '
                    f'{type(self.backbone).__name__} ran in the forward pass; expected a '
                    'ViT-like backbone whose blocks use MultiheadAttention, or a CNN method '
                    'such as GradCAM.')
            maps = _last_sequence(record.maps)
            grads = None
            if self.class_specific:
                if targets is None:  # the predicted class, as grad-cam does
                    score = logits.max(dim=1).values.sum()
                else:
                    score = sum(t(row) for t, row in zip(targets, logits))
                grads = torch.autograd.grad(score, maps)
            with torch.no_grad():
                relevance = rollout([m.detach() for m in maps], grads)
        extra, hw = self.reshape.token_layout(relevance.shape[-1])
        return relevance, extra, hw


class AttentionRollout(AttentionMethod):
    """Attention rollout (Abnar & Zuidema 2020); not class-specific."""
    class_specific = False


class GradRollout(AttentionMethod):
    """Gradient-weighted attention rollout (Chefer et al., ICCV 2021); class-specific."""
    class_specific = True
