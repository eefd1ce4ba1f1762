"""HiraConfig: PEFT's fields and defaults for HiRA."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftConfig, PeftType


@dataclass
class HiraConfig(PeftConfig):
    """HiRA: delta W = W0 * (B A) (elementwise), so the update can have the full rank of W0 with r (in + out)
    parameters. r: the rank of B A (PEFT's default 32). init_weights: True (A Kaiming-uniform, B = 0: a no-op),
    "gaussian" (A ~ N(0, 1/r^2)), False (A, B ~ N(0, 1), for tests). rank_pattern: refused (PEFT 0.21.2 builds
    new layers with r regardless).
    """

    r: int = 32
    target_modules: Optional[Union[list, str]] = None
    exclude_modules: Optional[Union[list, str]] = None
    hira_dropout: float = 0.0
    fan_in_fan_out: bool = False
    modules_to_save: Optional[list] = None
    init_weights: Union[bool, str] = True
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[Union[list, str]] = None
    rank_pattern: Optional[dict] = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.HIRA
        for name in ("target_modules", "exclude_modules"):
            if isinstance(getattr(self, name), list):
                setattr(self, name, set(getattr(self, name)))
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ValueError("`layers_to_transform` cannot be used when `target_modules` is a str.")
        if isinstance(self.target_modules, str) and self.layers_pattern is not None:
            raise ValueError("`layers_pattern` cannot be used when `target_modules` is a str.")
        if self.rank_pattern:
            raise NotImplementedError("HiraConfig(rank_pattern=...) is not supported by tinypeft (PEFT 0.21.2 builds "
                                      "new HiRA layers with `r` whatever the pattern says); leave it empty.")
        if self.init_weights not in (True, False, "gaussian"):
            raise ValueError(f"Unknown initialization init_weights={self.init_weights!r}")
