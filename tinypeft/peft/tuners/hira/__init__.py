"""HiRA: high-rank adaptation by a Hadamard product with the frozen weight (Huang et al. 2025)."""
from .config import HiraConfig  # noqa: F401
from .layer import Conv1d, Conv2d, Conv3d, Embedding, HiraLayer, Linear  # noqa: F401
from .model import HiraModel  # noqa: F401
