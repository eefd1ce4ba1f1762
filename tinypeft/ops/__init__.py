"""The ops: each file holds Function subclasses (forward + hand-derived backward) and torch-named wrappers.

Importing this package registers every op in autograd.REGISTRY; Tensor's methods (tensor.py) call the
wrappers here, one line each.
"""
from . import arithmetic, reduce, shape  # noqa: F401  (registration by import)
from . import elementwise  # noqa: F401
from . import attention, dropout, linear, lora, loss, normalization, softmax  # noqa: F401
from . import cayley, conv, fold, fourier  # noqa: F401
from . import qr  # noqa: F401
