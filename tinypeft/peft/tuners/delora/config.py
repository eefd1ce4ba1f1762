"""DeloraConfig: PEFT's fields and defaults for DeLoRA."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftType, TargetModulesConfig


@dataclass
class DeloraConfig(TargetModulesConfig):
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

    _r_min = None  # DeLoRA checks r with PEFT's own message
    _refused_with_regex = ("layers_to_transform",)

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.DELORA
        if self.r <= 0:
            raise ValueError(f"`r` must be a positive integer; got {self.r}.")
