"""LNTuningConfig: PEFT's fields for LN tuning."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftConfig, PeftType


@dataclass
class LNTuningConfig(PeftConfig):
    """LN tuning (Zhao et al. 2023): train a copy of each target module (normally the LayerNorms), nothing else.

    target_modules: module names (suffix match) or a regex (full match); None takes the model type's norms.
    """

    target_modules: Optional[Union[list, str]] = None
    exclude_modules: Optional[Union[list, str]] = None
    modules_to_save: Optional[Union[list, str]] = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.LN_TUNING
