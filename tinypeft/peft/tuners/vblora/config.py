"""VBLoRAConfig: PEFT's fields and defaults for VB-LoRA."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import LinearTargetConfig, PeftType, check_number


@dataclass
class VBLoRAConfig(LinearTargetConfig, peft_type=PeftType.VBLORA):
    """VB-LoRA (Li et al. 2024): one trained vector bank [num_vectors, vector_length] shared by all layers; each
    layer's A [r, in] and B [out, r] are cut into sub-vectors of vector_length, and each sub-vector is a softmax
    mixture of the topk bank vectors its trained logits [num_vectors] rank highest.

    The bank starts U(-init_vector_bank_bound, init_vector_bank_bound), the logits N(0, init_logits_std);
    in_features and out_features of every target must divide by vector_length. save_only_topk_weights (saving
    only the top-k indices and weights) is not implemented by tinypeft: the full logits are saved.
    """

    r: int = 4
    num_vectors: int = 256
    vector_length: int = 256
    topk: int = field(default=2, metadata={"help": "how many bank vectors each sub-vector mixes"})
    exclude_modules: Optional[Union[list, str]] = None
    save_only_topk_weights: bool = False
    vblora_dropout: float = 0.0
    init_vector_bank_bound: float = 0.02
    init_logits_std: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        check_number(self, "vblora_dropout", 0, 1, high_open=True)
        if isinstance(self.topk, bool) or not isinstance(self.topk, int) or self.topk <= 0:
            raise ValueError(f"`topk` {self.topk} should be a positive integer value")
        for name in ("num_vectors", "vector_length"):
            check_number(self, name, 1, integer=True)
        if self.save_only_topk_weights:
            raise NotImplementedError("VBLoRAConfig(save_only_topk_weights=True) is not supported by tinypeft; leave "
                                      "it False (the full logits are saved).")
