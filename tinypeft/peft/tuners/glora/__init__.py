"""GLoRA: generalized LoRA, a learned affine re-parameterisation of each frozen Linear (Chavan et al. 2023)."""
from .config import GloraConfig  # noqa: F401
from .layer import GloraLayer, GloraLinear  # noqa: F401
from .model import GloraModel  # noqa: F401
