"""Building blocks of zoo-dilated, one concept per file."""

from .aspp import ASPP, ASPPPooling
from .causal import CausalConv1d, DilatedCausalStack, GatedResidualBlock
from .conv_norm_act import ConvNormAct, make_act, make_norm
from .dilated_conv import (
    DilatedConv1d,
    DilatedConv2d,
    check_rate,
    effective_kernel_size,
    same_padding,
)
from .fuse import fuse_batchnorm
from .separable import SeparableAtrousConv2d

__all__ = [
    "ASPP", "ASPPPooling", "CausalConv1d", "ConvNormAct", "DilatedCausalStack", "DilatedConv1d",
    "DilatedConv2d", "GatedResidualBlock", "SeparableAtrousConv2d", "check_rate",
    "effective_kernel_size", "fuse_batchnorm", "make_act", "make_norm", "same_padding",
]
