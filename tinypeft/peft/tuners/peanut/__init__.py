"""PEANuT: a small network that maps the frozen weight to its update (weight-aware adaptation)."""
from .config import PeanutConfig  # noqa: F401
from .layer import PeanutLayer, PeanutLinear  # noqa: F401
from .model import PeanutModel  # noqa: F401
