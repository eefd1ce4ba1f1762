"""OFT: orthogonal finetuning (Qiu et al. 2023; Liu et al. 2024 for the Cayley-Neumann form)."""
from .config import OFTConfig  # noqa: F401
from .layer import Conv2d, Embedding, Linear, OFTLayer, OFTRotationModule  # noqa: F401
from .model import OFTModel  # noqa: F401
