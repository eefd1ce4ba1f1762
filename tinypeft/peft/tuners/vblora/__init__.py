"""VB-LoRA: LoRA factors assembled from a shared bank of vectors by a top-k softmax mixture per sub-vector."""
from .config import VBLoRAConfig  # noqa: F401
from .layer import Linear, VBLoRALayer  # noqa: F401
from .model import VBLoRAModel  # noqa: F401
