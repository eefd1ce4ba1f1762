"""DEFT: decompositional efficient fine-tuning, a rank-r subspace of each weight removed and re-injected
(PaRa: removed only)."""
from .config import DeftConfig  # noqa: F401
from .layer import DeftLayer, DeftLinear  # noqa: F401
from .model import DeftModel  # noqa: F401
