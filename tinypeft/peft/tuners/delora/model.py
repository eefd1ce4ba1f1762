"""DeloraModel: puts DeLoRA layers on the target Linear modules."""
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, get_pattern_key
from .layer import DeloraLayer, DeloraLinear


class DeloraModel(BaseTuner):
    prefix = "delora_"
    layer_class = DeloraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        r = config.rank_pattern.get(get_pattern_key(list(config.rank_pattern), current_key), config.r)
        lam = config.lambda_pattern.get(get_pattern_key(list(config.lambda_pattern), current_key),
                                        config.delora_lambda)
        self._add_to_layer(target, target_name, parent, DeloraLinear,
                           lambda layer: layer.update_layer(adapter_name, r, lam, config))
