"""WaveFT: finetuning sparse coefficients of the weight update in the wavelet domain (Bilican et al. 2025)."""
from .config import WaveFTConfig  # noqa: F401
from .layer import WaveFTLayer, WaveFTLinear, rec_filters  # noqa: F401
from .model import WaveFTModel  # noqa: F401
