"""MiSS (formerly Bone): a shared block added to every slice of the weight."""
from .config import MissConfig  # noqa: F401
from .layer import MissLayer, MissLinear  # noqa: F401
from .model import MissModel  # noqa: F401
