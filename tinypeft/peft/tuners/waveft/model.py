"""WaveFTModel: puts WaveFT layers on the target Linear / Conv1D modules."""

from .... import nn
from ....models.gpt2 import Conv1D
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, check_target_module_exists, get_pattern_key, new_linear_layer
from .layer import WaveFTLayer, WaveFTLinear


class WaveFTModel(BaseTuner):
    prefix = "waveft_"
    layer_class = WaveFTLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _proportional(self, config):
        """n_frequency * (number of targets), split in proportion to each target's in * out (at least 1 each)."""
        sizes = {}
        for name, m in self.model.named_modules():
            base = m.base_layer if isinstance(m, WaveFTLayer) else m
            if name and isinstance(base, (nn.Linear, Conv1D)) and check_target_module_exists(config, name):
                sizes[name] = base.weight.shape[0] * base.weight.shape[1]
        if not sizes:
            raise ValueError("No target modules found for proportional parameter allocation.")
        total, budget = sum(sizes.values()), config.n_frequency * len(sizes)
        return {name: max(1, round(n / total * budget)) for name, n in sizes.items()}

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        n_frequency = None
        if config.proportional_parameters:
            cache = self.__dict__.setdefault("_proportional_params_cache", {})
            if adapter_name not in cache:
                cache[adapter_name] = self._proportional(config)
            n_frequency = cache[adapter_name].get(current_key)
        if n_frequency is None:
            key = get_pattern_key(list(config.n_frequency_pattern), current_key)
            n_frequency = config.n_frequency_pattern.get(key, config.n_frequency)
        self._add_to_layer(target, target_name, parent, lambda t: new_linear_layer(WaveFTLinear, t, config),
                           lambda layer: layer.update_layer(adapter_name, n_frequency, config))

