"""SHiRA: sparse high-rank adapters, a trained value at r (in + out) fixed positions of each weight."""
from .config import ShiraConfig  # noqa: F401
from .layer import Linear, ShiraLayer  # noqa: F401
from .mask_functions import random_mask  # noqa: F401
from .model import ShiraModel  # noqa: F401
