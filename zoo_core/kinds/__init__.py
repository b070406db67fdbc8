"""The six kinds of component and their interfaces. Importing this package imports torch."""

from .kernel import Backend, Kernel
from .loss import Loss
from .metric import Metric
from .model import Model
from .tokenizer import Tokenizer
from .transform import Transform

__all__ = ["Backend", "Kernel", "Loss", "Metric", "Model", "Tokenizer", "Transform"]
