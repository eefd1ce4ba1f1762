"""HRA: Householder reflection adaptation (Yuan et al. 2024)."""
from .config import HRAConfig  # noqa: F401
from .layer import HRAConv2d, HRALayer, HRALinear  # noqa: F401
from .model import HRAModel  # noqa: F401
