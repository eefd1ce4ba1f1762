"""C3A: circular convolution adaptation (Chen et al. 2025)."""
from .config import C3AConfig  # noqa: F401
from .layer import C3ALayer, C3ALinear, block_circulant_index  # noqa: F401
from .model import C3AModel  # noqa: F401
