"""PrefixTuningConfig (Li & Liang, 2021): N trainable keys and values in front of every attention layer."""
from dataclasses import dataclass
from typing import Optional

from ...config import PeftType, PromptLearningConfig


@dataclass
class PrefixTuningConfig(PromptLearningConfig):
    init_weights: Optional[str] = None  # "zero": a prefix of zeros (values 0, keys 0: uniform extra attention)
    encoder_hidden_size: Optional[int] = None  # width of the projection MLP; token_dim when left None
    prefix_projection: bool = False

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.PREFIX_TUNING
        if self.init_weights not in (None, "zero"):
            raise ValueError(f"init_weights must be None or 'zero', got {self.init_weights!r}.")
