"""TinyLoRA: LoRA around the frozen top-r SVD of each weight, trained only through a tiny vector v per group."""
from .config import TinyLoraConfig  # noqa: F401
from .layer import Embedding, Linear, TinyLoraLayer  # noqa: F401
from .model import TinyLoraModel  # noqa: F401
