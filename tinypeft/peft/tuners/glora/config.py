"""GloraConfig: PEFT's fields and defaults for GLoRA."""
from dataclasses import dataclass

from ...config import ModuleTargetsConfig, PeftType, unsupported

_CHOICES = {"config_A_B": ("lora", "vector", "constant", "none"), "config_C": ("lora", "vector", "none"),
            "config_D_E": ("vector", "constant", "none")}


@dataclass
class GloraConfig(ModuleTargetsConfig):
    """GLoRA: W_eff = W0 + W0 * A + B and b_eff = b0 + b0 * D + E + W0 @ C (elementwise * broadcast), five
    trained corrections, each parameterised by its config:

    "lora": Xd @ Xu (rank r); "vector": one column (or row) broadcast; "constant": one scalar; "none": zeros.
    config_A_B (lora, vector, constant, none), config_C (lora, vector, none; C is [in, 1]), config_D_E
    (vector, constant, none). C, D, E need a base bias (without one they are zeros).
    init_weights: True makes every path zero (Xu Kaiming-uniform, Xd = 0: a no-op); False draws them all.
    """

    r: int = 8
    bias: str = "none"
    config_A_B: str = "lora"
    config_C: str = "lora"
    config_D_E: str = "constant"
    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.GLORA
        for name, valid in _CHOICES.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"Invalid {name} value: {getattr(self, name)!r}. Valid values are: "
                                 f"{', '.join(sorted(valid))}.")
        unsupported(self, bias="none")  # PEFT's bias="all" / "glora_only" training
