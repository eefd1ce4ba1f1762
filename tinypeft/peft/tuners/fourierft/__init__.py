"""FourierFT: parameter-efficient finetuning with the discrete Fourier transform (Gao et al. 2024)."""
from .config import FourierFTConfig  # noqa: F401
from .layer import FourierFTLayer, FourierFTLinear  # noqa: F401
from .model import FourierFTModel  # noqa: F401
