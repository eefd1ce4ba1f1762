"""LN tuning: fine-tune only the LayerNorms (Zhao et al. 2023, "Tuning LayerNorm in Attention")."""
from .config import LNTuningConfig  # noqa: F401
from .layer import LNTuningLayer  # noqa: F401
from .model import LNTuningModel  # noqa: F401
