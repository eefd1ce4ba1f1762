"""tinypeft.functional: torch.nn.functional's names and arguments, on tinypeft's ops."""
from .ops.elementwise import gelu, relu, sigmoid, silu, tanh  # noqa: F401
from .ops.shape import embedding  # noqa: F401
