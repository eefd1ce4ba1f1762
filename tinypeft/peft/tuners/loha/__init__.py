"""LoHa: low-rank Hadamard product adaptation (Hyeon-Woo et al. 2021, FedPara; LyCORIS)."""
from .config import LoHaConfig  # noqa: F401
from .layer import Conv1d, Conv2d, LoHaLayer, Linear  # noqa: F401
from .model import LoHaModel  # noqa: F401
