"""BEFT: bias-efficient fine-tuning, a trained bias added to each target Linear (Huang et al. 2025)."""
from .config import BeftConfig  # noqa: F401
from .layer import BeftLayer, BeftLinear  # noqa: F401
from .model import BeftModel  # noqa: F401
