"""IA3Config: PEFT's fields and defaults for (IA)^3."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftConfig, PeftType


@dataclass
class IA3Config(PeftConfig):
    """(IA)^3: one learned vector l per target module, multiplied into its activations.

    target_modules: module names (suffix match), a regex (full match), or "all-linear"; None takes the model
    type's default (attention keys/values and one feed-forward layer). The output of these modules is scaled:
    y = base(x) * l, with l stored [out, 1].
    feedforward_modules: those targets whose INPUT is scaled instead: y = base(x * l), l stored [1, in]
    (the paper rescales the feed-forward's inner activation, which is the input of its second layer).
    Must be a subset of target_modules. None takes the model type's default.
    init_ia3_weights: True starts every l at 1, so a fresh adapter changes nothing; False draws l ~ N(0, 1)
    (for tests).
    """

    target_modules: Optional[Union[list, str]] = None
    exclude_modules: Optional[Union[list, str]] = None
    feedforward_modules: Optional[Union[list, str]] = None
    fan_in_fan_out: bool = False
    modules_to_save: Optional[list] = None
    init_ia3_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.IA3
        # lists become sets, as in PEFT (a set is what the subset check below and the matching expect)
        for name in ("target_modules", "exclude_modules", "feedforward_modules"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                setattr(self, name, set(value))
        # PEFT checks this only when both are lists/sets; a regex in either is left alone
        if isinstance(self.feedforward_modules, set) and isinstance(self.target_modules, set):
            if not self.feedforward_modules.issubset(self.target_modules):
                raise ValueError("`feedforward_modules` should be a subset of `target_modules`")
