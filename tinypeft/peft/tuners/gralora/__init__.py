"""GraLoRA: granular low-rank adaptation, k x k sub-blocks each with its own low-rank update (Jung et al. 2025)."""
from .config import GraloraConfig  # noqa: F401
from .layer import GraloraLayer, Linear  # noqa: F401
from .model import GraloraModel  # noqa: F401
