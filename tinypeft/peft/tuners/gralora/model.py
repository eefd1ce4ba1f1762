"""GraloraModel: puts GraLoRA layers on the target Linear / Conv1D modules."""
import warnings

from .... import nn
from ....models.gpt2 import Conv1D
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import GraloraLayer, Linear


class GraloraModel(BaseTuner):
    prefix = "gralora_"
    layer_class = GraloraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, lambda t: _new_layer(t, config),
                           lambda layer: layer.update_layer(adapter_name, config.r, config))


def _new_layer(target, config):
    if isinstance(target, nn.Linear):
        if config.fan_in_fan_out:
            warnings.warn("fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. "
                          "Setting fan_in_fan_out to False.")
            config.fan_in_fan_out = False
    elif isinstance(target, Conv1D):
        if not config.fan_in_fan_out:
            warnings.warn("fan_in_fan_out is set to False but the target module is `Conv1D`. "
                          "Setting fan_in_fan_out to True.")
            config.fan_in_fan_out = True
    else:
        raise TypeError(f"Target module {target} is not supported. Currently, only the following modules are "
                        "supported: `torch.nn.Linear`, `transformers.pytorch_utils.Conv1D`.")
    return Linear(target, fan_in_fan_out=config.fan_in_fan_out)
