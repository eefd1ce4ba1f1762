"""VeRA: vector-based random matrix adaptation (Kopiczko et al. 2024)."""
from .config import VeraConfig  # noqa: F401
from .layer import Linear, VeraLayer  # noqa: F401
from .model import VeraModel  # noqa: F401
