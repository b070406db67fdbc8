"""Dilated (atrous) convolution with "same" padding derived from kernel and rate.

Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016, eq. (2):

    (F *_r k)(p) = sum_{s + r t = p} F(s) k(t)

The rate ``r`` spaces the kernel taps ``r`` apart (``r = 1`` is an ordinary convolution), so a
kernel of size ``k`` spans ``k + (k - 1)(r - 1)`` input positions (its effective size). With
stride 1, padding ``r (k - 1) / 2`` on each side keeps the resolution; it is an integer for
every rate only when ``k`` is odd, so "same" padding refuses even kernels.
"""

from __future__ import annotations

from torch import nn

from zoo_core import ConfigError


def check_rate(rate: int, name: str = "rate") -> int:
    """Return ``rate`` if it is an integer ≥ 1, else raise naming it."""
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
        raise ConfigError(f"{name}={rate!r} is not a valid dilation rate: rates are integers "
                            "≥ 1 (1 = ordinary convolution); pass e.g. 1, 2 or 4")
    return rate


def effective_kernel_size(kernel_size: int, rate: int) -> int:
    """Span of a ``kernel_size`` kernel dilated by ``rate``: ``k + (k - 1)(r - 1)``.

    Example:
        >>> effective_kernel_size(3, 2)
        5
    """
    check_rate(rate)
    if not isinstance(kernel_size, int) or kernel_size < 1:
        raise ConfigError(f"kernel_size={kernel_size!r} must be an integer ≥ 1")
    return kernel_size + (kernel_size - 1) * (rate - 1)


def same_padding(kernel_size: int, rate: int = 1, name: str = "conv") -> int:
    """Padding per side that keeps the length of a stride-1 dilated convolution.

    Raises ``ConfigError`` for even kernels, whose "same" padding would be lopsided.

    Example:
        >>> same_padding(3, 6)
        6
    """
    span = effective_kernel_size(kernel_size, rate)
    if kernel_size % 2 == 0:
        raise ConfigError(
            f"{name}: kernel_size={kernel_size!r} is even, so 'same' padding would need "
            f"{span - 1} padded positions split unevenly between the two sides; use an odd "
            "kernel (3, 5, 7) or pass an explicit padding"
        )
    return (span - 1) // 2


def _resolve_padding(padding: int | str, kernel_size: int, rate: int, name: str) -> int:
    if padding == "same":
        return same_padding(kernel_size, rate, name)
    if padding == "valid":
        return 0
    if isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return padding
    raise ConfigError(f"{name}: padding={padding!r} is not valid; use 'same', 'valid' or an "
                        "integer ≥ 0")


class DilatedConv1d(nn.Conv1d):
    """``nn.Conv1d`` with a checked dilation ``rate`` and "same" padding by default.

    Example:
        >>> conv = DilatedConv1d(8, 8, kernel_size=3, rate=4)   # spans 9 steps
        >>> conv(torch.randn(2, 8, 50)).shape
        torch.Size([2, 8, 50])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, rate: int = 1,
                 padding: int | str = "same", stride: int = 1, groups: int = 1,
                 bias: bool = True) -> None:
        check_rate(rate, "DilatedConv1d rate")
        pad = _resolve_padding(padding, kernel_size, rate, "DilatedConv1d")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=pad,
                         dilation=rate, groups=groups, bias=bias)


class DilatedConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a checked dilation ``rate`` and "same" padding by default.

    Example:
        >>> conv = DilatedConv2d(8, 8, kernel_size=3, rate=6)   # spans 13 × 13
        >>> conv(torch.randn(2, 8, 33, 33)).shape
        torch.Size([2, 8, 33, 33])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, rate: int = 1,
                 padding: int | str = "same", stride: int = 1, groups: int = 1,
                 bias: bool = True) -> None:
        check_rate(rate, "DilatedConv2d rate")
        pad = _resolve_padding(padding, kernel_size, rate, "DilatedConv2d")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=pad,
                         dilation=rate, groups=groups, bias=bias)
