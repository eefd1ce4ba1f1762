"""LoKr: low-rank Kronecker product adaptation (Yeh et al. 2023, LyCORIS)."""
from .config import LoKrConfig  # noqa: F401
from .layer import Conv1d, Conv2d, LoKrLayer, Linear  # noqa: F401
from .model import LoKrModel  # noqa: F401
