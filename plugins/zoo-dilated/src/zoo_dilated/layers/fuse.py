"""Fold inference-mode batch norm into the convolution before it.

Batch norm at inference is an affine map per channel (Ioffe & Szegedy 2015, Alg. 2):
``y = γ (x − μ) / √(σ² + ε) + β``. Following a convolution ``x = W * u + b`` it folds into
``W' = W · s`` and ``b' = (b − μ) s + β`` with ``s = γ / √(σ² + ε)`` per output channel,
saving one pass over every feature map. The folded model computes the same function up to
rounding; its state dict loses the norm entries, so save checkpoints before fusing.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from zoo_core import InputError

_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("conv", "bn"),
          ("depthwise", "norm"))


def _foldable(conv: object, bn: object) -> bool:
    return isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every ``conv → BatchNorm2d`` pair of zoo-dilated blocks in place; return the model.

    Example:
        >>> model = zoo.create("model:deeplabv3", preset="resnet50").eval()
        >>> fuse_batchnorm(model)   # same logits, fewer passes over memory
    """
    if model.training:
        raise InputError("fuse_batchnorm() folds the running statistics of inference; call "
                            "model.eval() first (training needs the batch statistics)")
    for module in list(model.modules()):
        for conv_name, bn_name in _PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if _foldable(conv, bn):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
        if isinstance(module, nn.Sequential) and len(module) == 2 and \
                _foldable(module[0], module[1]):  # a ResNet shortcut: conv 1×1, BN
            module[0] = fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    return model
