"""Super-Tuning: sparse fine-tuning of the largest-magnitude weights, optionally with a LoRA beside (Supra)."""
from .config import SupertuningConfig  # noqa: F401
from .layer import SupertuningLayer, SupertuningLinear  # noqa: F401
from .model import SupertuningModel  # noqa: F401
