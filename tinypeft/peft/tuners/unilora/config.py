"""UniLoraConfig: PEFT's fields and defaults for UniLoRA."""
from dataclasses import dataclass, field

from ...config import LinearTargetConfig, PeftType, check_number


@dataclass
class UniLoraConfig(LinearTargetConfig, peft_type=PeftType.UNILORA,
                    refused_with_regex=("layers_to_transform", "layers_pattern")):
    """UniLoRA: LoRA's A [r, in] and B [out, r] of every target are read out of one trained vector theta_d
    [theta_d_length], A[i, j] = theta_d[idx_A[i, j]] * scale_A[i, j], with fixed random indices (a balanced
    assignment drawn with NumPy under proj_seed, as PEFT draws it) and scale 1/sqrt(how often that entry is used).

    init_weights=True: theta_d ~ U(-init_theta_d_bound, init_theta_d_bound); False: N(0, 1). save_indices=True
    (writing the indices into the file) is not implemented: they are rebuilt from proj_seed, as PEFT's default.
    """

    r: int = 4
    proj_seed: int = 42
    theta_d_length: int = 256
    save_indices: bool = field(default=False, metadata={"help": "True (not implemented): write the indices into "
                                                                "the file; False: rebuild them from proj_seed"})
    unilora_dropout: float = 0.0
    init_theta_d_bound: float = 0.02
    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        check_number(self, "theta_d_length", 1, integer=True)
        check_number(self, "unilora_dropout", 0, 1)
        if not self.init_theta_d_bound > 0:
            raise ValueError(f"`init_theta_d_bound` should be a positive float, got {self.init_theta_d_bound}.")
        if self.save_indices:
            raise NotImplementedError("UniLoraConfig(save_indices=True) is not supported by tinypeft; leave it False "
                                      "(the indices are rebuilt from proj_seed when the adapter is loaded).")
