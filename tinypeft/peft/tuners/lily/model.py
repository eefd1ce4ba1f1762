"""LilyModel: puts Lily layers on the target Linear modules, then shares A and B across layers as PEFT does.

Layers are grouped by (the target name they matched, base weight shape), in model order. In each group every
layer uses the first layer's lily_B, and each run of stride_A consecutive layers uses its first layer's lily_A
(the same module object, so the state dict lists it under each layer, and it is trained once).
"""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import LilyLayer, LilyLinear


class LilyModel(BaseTuner):
    prefix = "lily_"
    layer_class, layers_mapping = LilyLayer, {nn.Linear: LilyLinear}
    unsupported_layer_error = NotImplementedError  # PEFT's kind of error for a layer that is not nn.Linear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def inject_adapter(self, model, adapter_name):
        super().inject_adapter(model, adapter_name)
        self._share_across_layers(model, self.peft_config[adapter_name], adapter_name)

    @staticmethod
    def _share_across_layers(model, config, adapter_name):
        groups = {}
        for key, module in model.named_modules():
            if not isinstance(module, LilyLayer) or adapter_name not in module.lily_A:
                continue
            if isinstance(config.target_modules, str):
                suffix = config.target_modules
            else:  # the last target name the path ends with, as PEFT picks it
                suffix = ([t for t in config.target_modules if key.endswith(t)] or [None])[-1]
            if suffix is not None:
                groups.setdefault((suffix, tuple(module.base_layer.weight.shape)), []).append(module)
        for layers in groups.values():
            for i, layer in enumerate(layers):
                if i:
                    layer.lily_B[adapter_name] = layers[0].lily_B[adapter_name]
                leader = (i // config.stride_A) * config.stride_A
                if i != leader:
                    layer.lily_A[adapter_name] = layers[leader].lily_A[adapter_name]
