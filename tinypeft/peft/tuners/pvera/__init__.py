"""PVeRA: probabilistic VeRA (a learned mean and log-variance between VeRA's shared projections)."""
from .config import PveraConfig  # noqa: F401
from .layer import Linear, PveraLayer  # noqa: F401
from .model import PveraModel  # noqa: F401
