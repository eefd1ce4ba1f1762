"""AdaLoRA: adaptive budget allocation for LoRA (Zhang et al. 2023)."""
from .config import AdaLoraConfig  # noqa: F401
from .layer import AdaLoraLayer, SVDConv2d, SVDLinear  # noqa: F401
from .model import AdaLoraModel  # noqa: F401
from .rank_allocator import RankAllocator  # noqa: F401
