"""RoadConfig: PEFT's fields and defaults for RoAd."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftConfig, PeftType


@dataclass
class RoadConfig(PeftConfig):
    """RoAd: the layer's outputs are rotated in pairs, y_i' = a (cos t y_i - sin t y_{i+g/2}), y_{i+g/2}' =
    a (sin t y_i + cos t y_{i+g/2}), pairs taken within groups of group_size outputs.
    variant: "road_1" (one angle and scale per pair, shared by its two outputs), "road_2" (per output),
    "road_4" (separate angles and scales for the cos and sin terms). init_weights: True (angle 0, scale 1: a no-op);
    False (angle ~ N(0, 0.5^2), scale ~ N(1, 0.5^2), for tests).
    """

    variant: str = "road_1"
    group_size: int = 64
    init_weights: bool = True
    target_modules: Optional[Union[list, str]] = None
    modules_to_save: Optional[list] = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.ROAD
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if self.variant not in ["road_1", "road_2", "road_4"]:
            raise ValueError(f"Invalid variant {self.variant} specified. Please choose from road_1, road_2 or road_4")
        if self.group_size <= 0 or self.group_size % 2 != 0:
            raise ValueError(f"The group_size must be divisible by 2 when using RoadLayer, but got {self.group_size}.")
