"""RandLoRA: full-rank updates from shared random bases with small trained scalings (Albert et al. 2025)."""
from .config import RandLoraConfig  # noqa: F401
from .layer import Linear, RandLoraLayer  # noqa: F401
from .model import RandLoraModel  # noqa: F401
