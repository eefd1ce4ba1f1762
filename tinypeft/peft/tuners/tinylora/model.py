"""TinyLoraModel: the trained vectors v live on the tuner as `base_model.tinylora_v.<adapter>.<group>` (PEFT's
key; saved once as base_model.tinylora_v.<group>), shared by the layers of each group; every layer gets its own
frozen SVD factors and projections, numbered in module order."""
import numpy as np

from .... import nn
from ....creation import generator
from ....models.gpt2 import Conv1D
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, check_target_module_exists, linear_fan_in_fan_out
from .layer import Embedding, Linear, TinyLoraLayer


class TinyLoraModel(BaseTuner):
    prefix = "tinylora_"
    layer_class = TinyLoraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table
    shared_state_names = ("tinylora_v",)

    def inject_adapter(self, model, adapter_name):
        config = self._prepare_config(self.peft_config[adapter_name], model)
        self._shared_state(nn.ModuleDict)[adapter_name] = nn.ParameterDict({})
        targets = [key for key, m in model.named_modules()
                   if key and isinstance(m, (nn.Linear, Conv1D, nn.Embedding, TinyLoraLayer))
                   and check_target_module_exists(config, key)]
        self._target_idx = {key: i for i, key in enumerate(targets)}  # seeds, and the weight-tying groups
        super().inject_adapter(model, adapter_name)

    def _group(self, config, layer_idx):
        """PEFT's grouping: round(n (1 - weight_tying)) groups of n // groups consecutive layers, the last
        taking any rest."""
        n = len(self._target_idx)
        groups = max(1, round(n * (1.0 - config.weight_tying)))
        return str(min(layer_idx // max(1, n // groups), groups - 1))

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        layer_idx = self._target_idx[current_key]
        v_key = self._group(config, layer_idx)
        vs = self.tinylora_v[adapter_name]
        if v_key not in vs:
            if config.init_weights is True:
                v = np.zeros(config.u)
            elif config.init_weights == "uniform":
                v = generator().uniform(-config.init_v_bound, config.init_v_bound, config.u)
            else:
                v = generator().standard_normal(config.u)
            vs[v_key] = nn.Parameter(v.astype(np.float32))
        self._add_to_layer(target, target_name, parent, lambda t: self._new_layer(config, t, layer_idx),
                           lambda layer: layer.update_layer(adapter_name, v_key, config))

    def _new_layer(self, config, target, layer_idx):
        if isinstance(target, nn.Embedding):
            return Embedding(target, self.tinylora_v, layer_idx)
        fan_in_fan_out = linear_fan_in_fan_out(config, target)
        if fan_in_fan_out is None:
            raise TypeError(f"Target module {target} is not supported. Currently, only the following modules are "
                            "supported: `torch.nn.Linear`, `torch.nn.Embedding`, `transformers.pytorch_utils.Conv1D`.")
        return Linear(target, self.tinylora_v, layer_idx, fan_in_fan_out=fan_in_fan_out)
