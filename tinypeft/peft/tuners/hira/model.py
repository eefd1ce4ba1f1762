"""HiraModel: puts HiRA layers on the target Linear / Conv1D / Embedding / Conv1d / Conv2d / Conv3d modules."""
import warnings

from .... import nn
from ....models.gpt2 import Conv1D
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner
from .layer import Conv1d, Conv2d, Conv3d, Embedding, HiraLayer, Linear


class HiraModel(BaseTuner):
    prefix = "hira_"
    layer_class = HiraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, lambda t: _new_layer(t, config),
                           lambda layer: layer.update_layer(adapter_name, config.r, config))


def _new_layer(target, config):
    if isinstance(target, nn.Embedding):
        return Embedding(target)
    if isinstance(target, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return (Conv1d, Conv2d, Conv3d)[len(target.kernel_size) - 1](target)
    if isinstance(target, nn.Linear):
        if config.fan_in_fan_out:
            warnings.warn("fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. "
                          "Setting fan_in_fan_out to False.")
        return Linear(target)
    if isinstance(target, Conv1D):
        return Linear(target, fan_in_fan_out=True)
    raise ValueError(f"Target module {target} is not supported. Currently, only `torch.nn.Linear`, `Conv1D`, "
                     "`torch.nn.Embedding` and `torch.nn.Conv1d/2d/3d` are supported.")
