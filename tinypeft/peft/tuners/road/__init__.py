"""RoAd: 2-D rotation adaptation of a layer's outputs (Liao et al. 2024)."""
from .config import RoadConfig  # noqa: F401
from .layer import Linear, RoadLayer  # noqa: F401
from .model import RoadModel  # noqa: F401
