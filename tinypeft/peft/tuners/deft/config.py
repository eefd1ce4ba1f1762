"""DeftConfig: PEFT's fields and defaults for DEFT."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import LinearTargetConfig, PeftType


@dataclass
class DeftConfig(LinearTargetConfig):
    """DEFT: W' = (I - P_proj) W + scaling * Q_P R, with P [out, r] and R [r, in] trained (r capped at out).

    decomposition_method: "relu" (Q_P = P, P_proj = P relu(P)^T) or "qr" (Q_P = qr(P).Q, P_proj = Q_P Q_P^T).
    alpha: scaling = alpha / r (None: 1). para: PaRa, only the removal (no R). deft_dropout: on the injection's
    input. init_weights: True sets R = P_proj's right factor times W / scaling, so the update starts at zero;
    False draws R from N(0, 0.02 init_scale). fan_in_fan_out: for GPT-2's Conv1D (set automatically).
    """

    r: int = 8
    exclude_modules: Optional[Union[list, str]] = None
    decomposition_method: str = "relu"
    init_scale: float = 1.0
    alpha: Optional[int] = None
    para: bool = False
    deft_dropout: float = 0.0
    init_weights: bool = True

    _r_min = None  # DEFT checks r in the layer, with PEFT's message
    _refused_with_regex = ("layers_to_transform", "layers_pattern")

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.DEFT
        if self.decomposition_method not in ("qr", "relu"):
            raise ValueError(f"Unknown decomposition_method '{self.decomposition_method}', must be one of "
                             "['qr', 'relu'].")
