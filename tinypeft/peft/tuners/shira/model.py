"""ShiraModel: SHiRA layers on the targets, each with its mask drawn by config.mask_fn. The indices are not model
state; the adapter file carries them (`<layer>.shira_indices`, int32 [2, n]) beside the values, as PEFT's does."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, linear_fan_in_fan_out
from .layer import Linear, ShiraLayer


class ShiraModel(BaseTuner):
    prefix = "shira_"
    layer_class = ShiraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        base = target.base_layer if isinstance(target, ShiraLayer) else target
        if not isinstance(base, nn.Linear):
            raise TypeError(f"Target module {target} is not supported. Currently, only the following modules are "
                            "supported: `torch.nn.Linear`.")
        linear_fan_in_fan_out(config, base)  # PEFT's warning and correction when fan_in_fan_out=True
        if config.mask_fn is None:
            raise ValueError(f"ShiraConfig(mask_type={config.mask_type!r}) has no mask function: set "
                             "`config.mask_fn = my_mask_fn` (base_layer, r, **kwargs) -> [out, in] 0/1 array.")
        mask = config.mask_fn(base, config.r, random_seed=config.random_seed)
        self._add_to_layer(target, target_name, parent, Linear,
                           lambda layer: layer.update_layer(adapter_name, mask, config.r, config))

    def _adapter_state_for_save(self, config, adapter_name, state):
        for name, m in self.named_modules(prefix="base_model"):
            if isinstance(m, ShiraLayer) and adapter_name in m.shira_indices:
                state[f"{name}.shira_indices"] = m.shira_indices[adapter_name]
        return state

    def _load_own_state(self, file_state, adapter_name):
        file_state = dict(file_state)
        for name, m in self.named_modules(prefix="base_model"):
            key = f"{name}.shira_indices"
            if isinstance(m, ShiraLayer) and key in file_state:
                m.set_indices(adapter_name, file_state.pop(key))
        return file_state
