"""tinypeft.nn: torch.nn's building blocks (Module, Parameter, layers, containers) on tinypeft tensors."""
from . import init, utils  # noqa: F401
from .activation import ReLU, Tanh  # noqa: F401
from .attention import MultiheadAttention  # noqa: F401
from .conv import Conv1d, Conv2d, Conv3d  # noqa: F401
from .container import ModuleDict, ModuleList, ParameterDict, Sequential  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .embedding import Embedding  # noqa: F401
from .init import init_empty_weights  # noqa: F401
from .linear import Identity, Linear  # noqa: F401
from .module import Module, Parameter  # noqa: F401
from .normalization import LayerNorm, RMSNorm  # noqa: F401
from .rnn import LSTM  # noqa: F401
from .utils import skip_init  # noqa: F401

