"""PSOFT: orthogonal fine-tuning in the principal subspace, an r x r rotation between frozen SVD factors."""
from .config import PsoftConfig  # noqa: F401
from .layer import OrthLayer, PsoftLayer, PsoftLinear  # noqa: F401
from .model import PsoftModel  # noqa: F401
