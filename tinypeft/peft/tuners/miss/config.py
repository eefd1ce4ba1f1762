"""MissConfig: PEFT's fields and defaults for MiSS (formerly Bone)."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftType, TargetModulesConfig, check_number


@dataclass
class MissConfig(TargetModulesConfig, peft_type=PeftType.MISS):
    """MiSS (Kang et al.): one shared block per layer added to every r-column slice of the weight.

    r: the block's width (in_features is cut into in/r slices of r columns). init_weights: True (the block
    [r, out] starts at 0: a no-op), False (random, for tests), "bat" (blocks [out/r, r, r] that also multiply
    the weight's own blocks: W_blk -> W_blk @ B + B, needs in and out divisible by r) or "mini" (a block
    [r, mini_r] tiled along out). miss_dropout: dropout on the input of the added term.
    """

    r: int = 64
    miss_dropout: float = 0.0
    mini_r: int = 1
    exclude_modules: Optional[Union[list, str]] = None
    init_weights: Union[bool, str] = True
    bias: str = "none"

    def __post_init__(self):
        super().__post_init__()
        check_number(self, "miss_dropout", 0, 1, high_open=True)
        if self.init_weights not in (True, False, "bat", "mini"):
            raise ValueError(f"MissConfig(init_weights={self.init_weights!r}): use True, False, 'bat' or 'mini'.")
