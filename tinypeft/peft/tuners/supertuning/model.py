"""SupertuningModel: puts Super-Tuning layers on the target Linear modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import SupertuningLayer, SupertuningLinear


class SupertuningModel(BaseTuner):
    prefix = "supertuning_"
    layer_class = SupertuningLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_new_module(self, config, target):
        if not isinstance(target, nn.Linear):
            raise TypeError(f"Target module {target} is not supported. Currently, only `torch.nn.Linear` is "
                            "supported.")
        return SupertuningLinear(target, save_precomputed_indices=config.save_precomputed_indices)

    def _check_new_adapter_config(self, config):
        super()._check_new_adapter_config(config)
        kinds = sorted({c.save_precomputed_indices for c in self.peft_config.values()})
        if len(kinds) > 1:
            raise ValueError("Super-Tuning indices must be saved for all adapters or none, but got multiple different "
                             f"values: {kinds}")
