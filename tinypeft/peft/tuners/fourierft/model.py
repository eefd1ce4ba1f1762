"""FourierFTModel: puts FourierFT layers on the target Linear / Conv1D modules."""
import re

from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, new_linear_layer
from .layer import FourierFTLayer, FourierFTLinear

TARGETS = {**TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, "gpt2": ["mlp.c_proj"]}  # PEFT's FourierFT table


class FourierFTModel(BaseTuner):
    prefix = "fourierft_"
    layer_class = FourierFTLayer
    default_targets = TARGETS

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        key = next((k for k in config.n_frequency_pattern if re.match(rf".*\.{k}$", current_key)), current_key)
        n_frequency = config.n_frequency_pattern.get(key, config.n_frequency)
        self._add_to_layer(target, target_name, parent,
                           lambda t: new_linear_layer(FourierFTLinear, t, config, supported="`torch.nn.Linear`"),
                           lambda layer: layer.update_layer(adapter_name, n_frequency, config))

