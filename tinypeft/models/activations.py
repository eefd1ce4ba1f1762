"""config.json's activation names (hidden_act, activation_function, dense_act_fn) -> functions (transformers' ACT2FN)."""
from .. import functional as F


def _gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


ACT2FN = {
    "gelu": F.gelu,  # exact: x * Phi(x), with Phi from erf
    "gelu_new": _gelu_tanh,  # GPT-2's tanh approximation
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def activation(name):
    if name not in ACT2FN:
        raise ValueError(f"Unsupported activation {name!r}; supported: {sorted(ACT2FN)}.")
    return ACT2FN[name]
