"""(IA)^3: learned vectors that rescale activations (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning")."""
from .config import IA3Config  # noqa: F401
from .layer import IA3Layer, Linear  # noqa: F401
from .model import IA3Model  # noqa: F401
