"""FourierFTModel: puts FourierFT layers on the target Linear / Conv1D modules."""
import re
import warnings

from .... import nn
from ....models.gpt2 import Conv1D
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
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
                        "supported: `torch.nn.Linear`.")
    return FourierFTLinear(target, fan_in_fan_out=config.fan_in_fan_out)
