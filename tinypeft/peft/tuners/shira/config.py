"""ShiraConfig: PEFT's fields and defaults for SHiRA."""
import warnings
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftConfig, PeftType
from .mask_functions import random_mask


@dataclass
class ShiraConfig(PeftConfig, peft_type=PeftType.SHIRA):
    """SHiRA (Bhardwaj et al. 2024): train r (in + out) entries of each target weight (LoRA's parameter count),
    chosen by a mask: W' = W + scatter(shira_weight * scaling). mask_type "random" draws PEFT's random mask
    (random_seed; None uses a fresh torch generator's seed, so the masks equal PEFT's); any other mask_type needs a
    function in `config.mask_fn` (base_layer, r, **kwargs) -> [out, in] 0/1 array. init_weights=True starts the
    values at 0 (a no-op); False draws N(0, 1).
    """

    r: int = 32
    mask_type: str = "random"
    random_seed: Optional[int] = None
    target_modules: Optional[Union[list, str]] = None
    fan_in_fan_out: bool = False
    init_weights: bool = True
    modules_to_save: Optional[list] = None

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if self.mask_type == "random":
            self.mask_fn = random_mask
        else:
            if not self.inference_mode:
                warnings.warn(f"Argument self.mask_type={self.mask_type!r} is not recognized, please supply your own "
                              "masking function by calling `config.mask_fn = my_mask_fn`.")
            self.mask_fn = None
