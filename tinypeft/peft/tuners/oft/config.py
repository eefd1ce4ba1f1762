"""OFTConfig: PEFT's fields and defaults for OFT (orthogonal finetuning)."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import LinearTargetConfig, PeftType, check_one_size


@dataclass
class OFTConfig(LinearTargetConfig, peft_type=PeftType.OFT, r_min=0):
    """OFT: the layer's input is rotated by a block-diagonal orthogonal matrix before the frozen layer,
    y = base(x R), R = diag(R_1, ..., R_r), each R_i = cayley(S_i) with S_i a skew-symmetric block_size square.

    r: the number of blocks, or oft_block_size: their size (give exactly one; r * oft_block_size = in_features,
    adjusted to a divisor with a warning). use_cayley_neumann: R_i from a truncated Neumann series of the Cayley
    transform (num_cayley_neumann_terms terms) instead of the exact inverse. coft: constrained OFT (each S_i is
    projected back into a ball of radius eps before use). block_share: one S for all blocks.
    module_dropout: stored as PEFT does; PEFT 0.21.2's OFT forward does not apply it, nor does ours.
    init_weights: True starts at S = 0 (R = I, a no-op); False draws S ~ N(0, 0.1^2) (for tests).
    """

    r: int = 0
    oft_block_size: int = 32
    module_dropout: float = 0.0
    exclude_modules: Optional[Union[list, str]] = None
    init_weights: bool = True
    coft: bool = False
    eps: float = 6e-5
    block_share: bool = False
    use_cayley_neumann: bool = True
    num_cayley_neumann_terms: int = 5

    def __post_init__(self):
        super().__post_init__()  # r_min=0 above: r = 0 is allowed, oft_block_size gives the size instead
        check_one_size(self, "r", "oft_block_size")
