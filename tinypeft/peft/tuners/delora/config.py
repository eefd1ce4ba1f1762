"""DeloraConfig: PEFT's fields and defaults for DeLoRA."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftConfig, PeftType


@dataclass
class DeloraConfig(PeftConfig):
    """DeLoRA: delta W = B diag(lambda / (r ||a_i|| ||b_i||)) A diag(||W[:, j]||): each rank-one term normalised, so
    ||delta W|| is bounded by lambda (trained, starting at delora_lambda) times the base weight's column norms.

    r, delora_lambda (per module: rank_pattern, lambda_pattern); module_dropout: dropout on the adapter's input.
    init_weights: True (A Kaiming-uniform, B = 0: a no-op); False (both Kaiming-uniform, for tests).
    """

    r: int = 8
    delora_lambda: int = 15
    module_dropout: float = 0.0
    target_modules: Optional[Union[list, str]] = None
    exclude_modules: Optional[Union[list, str]] = None
    bias: str = "none"
    init_weights: bool = True
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[Union[list, str]] = None
    rank_pattern: Optional[dict] = field(default_factory=dict)
    lambda_pattern: Optional[dict] = field(default_factory=dict)
    modules_to_save: Optional[list] = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.DELORA
        for name in ("target_modules", "exclude_modules"):
            if isinstance(getattr(self, name), list):
                setattr(self, name, set(getattr(self, name)))
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ValueError("`layers_to_transform` cannot be used when `target_modules` is a str.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("When `layers_pattern` is specified, `layers_to_transform` must also be specified. ")
        if self.r <= 0:
            raise ValueError(f"`r` must be a positive integer; got {self.r}.")
        if self.bias != "none":
            raise NotImplementedError(f"DeloraConfig(bias={self.bias!r}) is not implemented by tinypeft; use 'none'.")
