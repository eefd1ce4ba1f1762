"""UniLoRA: every LoRA entry of every layer is one entry of a single shared trained vector theta_d."""
from .config import UniLoraConfig  # noqa: F401
from .layer import Linear, UniLoraLayer  # noqa: F401
from .model import UniLoraModel  # noqa: F401
