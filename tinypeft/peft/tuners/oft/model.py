"""OFTModel: puts OFT layers on the target Linear / Conv2d / Embedding modules."""
from .... import nn
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import Conv2d, Embedding, Linear, OFTLayer


class OFTModel(BaseTuner):
    prefix = "oft_"
    layer_class = OFTLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, _new_layer,
                           lambda layer: layer.update_layer(adapter_name, config.r, config))


def _new_layer(target):
    for base, cls in ((nn.Embedding, Embedding), (nn.Conv2d, Conv2d), (nn.Linear, Linear)):
        if isinstance(target, base):
            return cls(target)
    raise TypeError(f"Target module {target} is not supported. Currently, only `torch.nn.Linear`, `torch.nn.Conv2d`, "
                    "`torch.nn.Embedding` (optionally quantized) are supported.")
