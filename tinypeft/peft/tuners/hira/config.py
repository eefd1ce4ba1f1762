"""HiraConfig: PEFT's fields and defaults for HiRA."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftType, TargetModulesConfig


@dataclass
class HiraConfig(TargetModulesConfig, peft_type=PeftType.HIRA, r_min=None, pattern_needs_layers=False,
                 refused_with_regex=("layers_to_transform", "layers_pattern")):
    """HiRA: delta W = W0 * (B A) (elementwise), so the update can have the full rank of W0 with r (in + out)
    parameters. r: the rank of B A (PEFT's default 32). init_weights: True (A Kaiming-uniform, B = 0: a no-op),
    "gaussian" (A ~ N(0, 1/r^2)), False (A, B ~ N(0, 1), for tests). rank_pattern: refused (PEFT 0.21.2 builds
    new layers with r regardless).
    """

    r: int = 32
    exclude_modules: Optional[Union[list, str]] = None
    hira_dropout: float = 0.0
    fan_in_fan_out: bool = False
    init_weights: Union[bool, str] = True
    rank_pattern: Optional[dict] = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        if self.rank_pattern:
            raise NotImplementedError("HiraConfig(rank_pattern=...) is not supported by tinypeft (PEFT 0.21.2 builds "
                                      "new HiRA layers with `r` whatever the pattern says); leave it empty.")
        if self.init_weights not in (True, False, "gaussian"):
            raise ValueError(f"Unknown initialization init_weights={self.init_weights!r}")
