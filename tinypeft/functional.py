"""tinypeft.functional: torch.nn.functional's names and arguments, on tinypeft's ops."""
from .ops.attention import scaled_dot_product_attention  # noqa: F401
from .ops.conv import conv1d, conv2d, conv3d  # noqa: F401
from .ops.cayley import cayley  # noqa: F401
from .ops.fold import fold, unfold  # noqa: F401
from .ops.fourier import sparse_ifft2_real  # noqa: F401
from .ops.dropout import dropout  # noqa: F401
from .ops.elementwise import gelu, relu, sigmoid, silu, tanh  # noqa: F401
from .ops.linear import linear  # noqa: F401
from .ops.loss import cross_entropy, mse_loss  # noqa: F401
from .ops.normalization import layer_norm, rms_norm  # noqa: F401
from .ops.qr import qr_q  # noqa: F401
from .ops.shape import embedding  # noqa: F401
from .ops.softmax import log_softmax, softmax  # noqa: F401
