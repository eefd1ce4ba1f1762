"""DeLoRA: decoupled low-rank adaptation, a LoRA whose update has a bounded norm (Bini et al. 2025)."""
from .config import DeloraConfig  # noqa: F401
from .layer import DeloraLayer, DeloraLinear  # noqa: F401
from .model import DeloraModel  # noqa: F401
