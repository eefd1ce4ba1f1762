"""Lily: low-rank interconnected adaptation across layers, A shared by neighbouring layers and a routed mix of
shared B's (Zhong et al. 2024)."""
from .config import LilyConfig  # noqa: F401
from .layer import LilyLayer, LilyLinear  # noqa: F401
from .model import LilyModel  # noqa: F401
