"""BeftConfig: PEFT's fields and defaults for BEFT."""
from dataclasses import dataclass

from ...config import ModuleTargetsConfig, PeftType


@dataclass
class BeftConfig(ModuleTargetsConfig):
    """BEFT: y = base(x) + b, one trained vector beft_bias [1, out] per target Linear; nothing else changes.

    target_modules: names (suffix match) or a regex (full match); None takes the model type's value projections.
    init_weights: True starts b at zero (a no-op); False draws it from N(0, 1) (for tests).
    """

    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.BEFT
