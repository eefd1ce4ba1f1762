"""GraloraModel: puts GraLoRA layers on the target Linear / Conv1D modules."""

from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, linear_fan_in_fan_out
from .layer import GraloraLayer, Linear


class GraloraModel(BaseTuner):
    prefix = "gralora_"
    layer_class = GraloraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, lambda t: _new_layer(t, config),
                           lambda layer: layer.update_layer(adapter_name, config.r, config))


def _new_layer(target, config):
    fan_in_fan_out = linear_fan_in_fan_out(config, target)
    if fan_in_fan_out is None:
        raise TypeError(f"Target module {target} is not supported. Currently, only the following modules are "
                        "supported: `torch.nn.Linear`, `transformers.pytorch_utils.Conv1D`.")
    return Linear(target, fan_in_fan_out=fan_in_fan_out)
