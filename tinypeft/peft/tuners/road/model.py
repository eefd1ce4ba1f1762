"""RoadModel: puts RoAd layers on the target Linear modules."""
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import Linear, RoadLayer


class RoadModel(BaseTuner):
    prefix = "road_"
    layer_class = RoadLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, Linear, lambda layer: layer.update_layer(adapter_name, config))
