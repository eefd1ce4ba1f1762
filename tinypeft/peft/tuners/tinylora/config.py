"""TinyLoraConfig: PEFT's fields and defaults for TinyLoRA."""
from dataclasses import dataclass, field
from typing import Union

from ...config import LinearTargetConfig, PeftType, check_number


@dataclass
class TinyLoraConfig(LinearTargetConfig, peft_type=PeftType.TINYLORA):
    """TinyLoRA: W + B R A, where B [out, r] and A [r, in] are the frozen top-r SVD factors of W (sqrt(S) on each
    side) and R = sum_i v_i P_i [r, r] mixes u fixed random matrices P_i ~ N(0, 1/r) (one draw per layer, seeded
    by projection_seed + the layer's index) by a trained vector v [u]. Layers share v by groups: weight_tying=0
    gives every layer its own v, 1 one v for all.

    init_weights: True, v = 0 (a no-op); "uniform", v ~ U(-init_v_bound, init_v_bound); False, v ~ N(0, 1)
    (PEFT leaves v as uninitialised memory). save_projection=False is not implemented: tinypeft draws the P_i with
    NumPy's generator, not torch's, so they must travel in the file.
    """

    r: int = 2
    u: int = 64
    weight_tying: float = 0.0
    projection_seed: int = 42
    save_projection: bool = True
    init_v_bound: float = 0.02
    init_weights: Union[bool, str] = field(default=True, metadata={"help": "True, 'uniform' or False"})
    tinylora_dropout: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.u, bool) or not isinstance(self.u, int) or self.u <= 0:
            raise ValueError(f"`u` should be a positive integer value but the value passed is {self.u}")
        if not 0.0 <= self.weight_tying <= 1.0:
            raise ValueError(f"`weight_tying` should be a float between 0.0 and 1.0 but the value passed is "
                             f"{self.weight_tying}")
        check_number(self, "tinylora_dropout", 0, 1, high_open=True)
        if self.init_weights not in (True, False, "uniform"):
            raise ValueError(f"TinyLoraConfig(init_weights={self.init_weights!r}): use True, False or 'uniform'.")
        if not self.save_projection:
            raise NotImplementedError("TinyLoraConfig(save_projection=False) is not supported by tinypeft: the "
                                      "projections P would have to be regenerated from torch's random stream. Use "
                                      "save_projection=True (PEFT's default).")
