"""LNTuningModel: wraps each target module (by default the model type's norms) in an LNTuningLayer."""
from ..tuners_utils import BaseTuner
from .layer import LNTuningLayer

# PEFT's TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING, for the model types tinypeft has
TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING = {
    "gpt2": ["ln_1", "ln_2", "ln_f"],
    "llama": ["input_layernorm", "post_attention_layernorm", "norm"],
    "mistral": ["input_layernorm", "post_attention_layernorm", "norm"],
    "t5": ["layer_norm", "final_layer_norm"],
    "mt5": ["layer_norm", "final_layer_norm"],
}


class LNTuningModel(BaseTuner):
    prefix = "ln_tuning_"
    layer_class = LNTuningLayer
    default_targets = TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, LNTuningLayer,
                           lambda layer: layer.update_layer(adapter_name))
