"""BOFTConfig: PEFT's fields and defaults for BOFT (butterfly orthogonal finetuning)."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import LinearTargetConfig, PeftType, check_one_size


@dataclass
class BOFTConfig(LinearTargetConfig, peft_type=PeftType.BOFT, r_min=None):
    """BOFT: y = s * base(x M) (s a trained per-output scale), M = B_m ... B_1 a product of m butterfly factors,
    each B_i = P_i diag(R_1, ..., R_D) P_i^T with R_j = cayley(skew) orthogonal [b, b] and P_i a fixed permutation.

    boft_block_size b or boft_block_num D (give exactly one; b * D = in_features). boft_n_butterfly_factor m:
    1 is plain block-diagonal OFT; each further factor doubles the reach of the mixing. boft_dropout: in
    training, a random p-share of the blocks of one random factor is replaced by the identity.
    init_weights: True starts at R = I, s = 1 (a no-op); False draws boft_R ~ N(0, 0.1^2), boft_s ~ N(1, 0.1^2).
    """

    boft_block_size: int = 4
    boft_block_num: int = 0
    boft_n_butterfly_factor: int = 1
    exclude_modules: Optional[Union[list, str]] = None
    boft_dropout: float = 0.0
    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        check_one_size(self, "boft_block_size", "boft_block_num")
