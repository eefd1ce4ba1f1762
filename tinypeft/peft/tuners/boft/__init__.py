"""BOFT: butterfly orthogonal finetuning (Liu et al. 2024)."""
from .config import BOFTConfig  # noqa: F401
from .layer import BOFTLayer, Conv2d, Linear  # noqa: F401
from .model import BOFTModel  # noqa: F401
