"""PeanutConfig: PEFT's fields and defaults for PEANuT."""
from dataclasses import dataclass
from typing import Optional, Union

from ....models.activations import ACT2FN
from ...config import PeftType, TargetModulesConfig

# transformers' ACT2FN names: PEFT accepts these; the ones tinypeft's ACT2FN lacks are refused as not implemented
TRANSFORMERS_ACTIVATIONS = ("gelu", "gelu_10", "gelu_accurate", "gelu_fast", "gelu_new", "gelu_python",
                            "gelu_python_tanh", "gelu_pytorch_tanh", "hardswish", "laplace", "leaky_relu", "linear",
                            "mish", "prelu", "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu",
                            "sqrtsoftplus", "swish", "tanh", "xielu")


@dataclass
class PeanutConfig(TargetModulesConfig):
    """PEANuT: delta W = scaling * (B(net(act(W^T A^T))))^T, a network over the frozen weight's rows:
    A maps out -> r, `depth` encoders and decoders (r -> r, each followed by act_fn, the decoders adding the
    encoders' inputs back, U-Net style), B maps r -> out.

    init_weights: True starts B at zero (a no-op); False draws it too (for tests).
    """

    r: int = 32
    depth: int = 0
    act_fn: str = "relu"
    scaling: float = 1.0
    exclude_modules: Optional[Union[list, str]] = None
    init_weights: bool = True

    _r_min = None  # checked below with PEFT's message
    _refused_with_regex = ()

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.PEANUT
        if self.r <= 0:
            raise ValueError("`r` must be a positive integer.")
        if self.depth < 0:
            raise ValueError("`depth` can only be a non-negative integer.")
        if self.act_fn not in TRANSFORMERS_ACTIVATIONS:
            raise ValueError(f"Unsupported `act_fn`: {self.act_fn}. Must be one of {list(TRANSFORMERS_ACTIVATIONS)}.")
        if self.act_fn not in ACT2FN:
            raise NotImplementedError(f"PeanutConfig(act_fn={self.act_fn!r}) is not implemented by tinypeft; use one "
                                      f"of {sorted(ACT2FN)}.")
