"""HRAConfig: PEFT's fields and defaults for HRA (Householder reflection adaptation)."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftType, TargetModulesConfig


@dataclass
class HRAConfig(TargetModulesConfig, peft_type=PeftType.HRA):
    """HRA (Yuan et al. 2024): W' = W R, R = H_1 H_2 ... H_r, H_i = I - 2 u_i u_i^T / ||u_i||^2 (an orthogonal map).

    r: the number of reflections (hra_u [in, r]). apply_GS: orthonormalise the u_i first (Gram-Schmidt), so
    R = I - 2 U U^T. init_weights: True repeats each random column twice, so reflections cancel in pairs and R = I
    (needs an even r); False draws every column at random (for tests).
    """

    r: int = 8
    apply_GS: bool = False
    exclude_modules: Optional[Union[list, str]] = None
    init_weights: bool = True
    bias: str = "none"
