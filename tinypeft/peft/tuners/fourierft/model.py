"""FourierFTModel: puts FourierFT layers on the target Linear / Conv1D modules."""
import re

from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, linear_fan_in_fan_out
from .layer import FourierFTLayer, FourierFTLinear

TARGETS = {**TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, "gpt2": ["mlp.c_proj"]}  # PEFT's FourierFT table


class FourierFTModel(BaseTuner):
    prefix = "fourierft_"
    layer_class = FourierFTLayer
    default_targets = TARGETS

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        key = next((k for k in config.n_frequency_pattern if re.match(rf".*\.{k}$", current_key)), current_key)
        n_frequency = config.n_frequency_pattern.get(key, config.n_frequency)
        self._add_to_layer(target, target_name, parent, lambda t: _new_layer(t, config),
                           lambda layer: layer.update_layer(adapter_name, n_frequency, config))


def _new_layer(target, config):
    fan_in_fan_out = linear_fan_in_fan_out(config, target)
    if fan_in_fan_out is None:
        raise TypeError(f"Target module {target} is not supported. Currently, only the following modules are "
                        "supported: `torch.nn.Linear`.")
    return FourierFTLinear(target, fan_in_fan_out=fan_in_fan_out)
