"""DeloraConfig: PEFT's fields and defaults for DeLoRA."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftType, TargetModulesConfig


@dataclass
class DeloraConfig(TargetModulesConfig, peft_type=PeftType.DELORA, r_min=None,
                   refused_with_regex=("layers_to_transform",)):
    """DeLoRA: delta W = B diag(lambda / (r ||a_i|| ||b_i||)) A diag(||W[:, j]||): each rank-one term normalised, so
    ||delta W|| is bounded by lambda (trained, starting at delora_lambda) times the base weight's column norms.

    r, delora_lambda (per module: rank_pattern, lambda_pattern); module_dropout: dropout on the adapter's input.
    init_weights: True (A Kaiming-uniform, B = 0: a no-op); False (both Kaiming-uniform, for tests).
    """

    r: int = 8
    delora_lambda: int = 15
    module_dropout: float = 0.0
    exclude_modules: Optional[Union[list, str]] = None
    bias: str = "none"
    init_weights: bool = True
    rank_pattern: Optional[dict] = field(default_factory=dict)
    lambda_pattern: Optional[dict] = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        if self.r <= 0:  # r_min=None above: DeLoRA checks r with PEFT's own message
            raise ValueError(f"`r` must be a positive integer; got {self.r}.")
