"""IA3Model: puts (IA)^3 layers on the target modules, feed-forward ones scaling their input."""
import dataclasses
import re
import warnings

import numpy as np

from .... import nn
from ....models.gpt2 import Conv1D
from ..tuners_utils import BaseTuner
from ...utils.other import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
    ModulesToSaveWrapper,
)
from .bnb import dispatch_bnb
from .conv import Conv1d, Conv2d, Conv3d
from .layer import IA3Layer, Linear


def is_feedforward_module(config, key):
    """PEFT's rule: a regex full-matches the path; a list entry matches a path that ends with it."""
    if isinstance(config.feedforward_modules, str):
        return re.fullmatch(config.feedforward_modules, key) is not None
    return any(key.endswith(name) for name in config.feedforward_modules)


class IA3Model(BaseTuner):
    prefix = "ia3_"
    layer_class = IA3Layer
    default_targets = TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING

    def _prepare_config(self, config, model):
        config = super()._prepare_config(config, model)
        if config.feedforward_modules is None:
            model_type = model.config.model_type
            if model_type not in TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING:
                raise ValueError("Please specify `feedforward_modules` in `peft_config`")
            config.feedforward_modules = set(TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING[model_type])
        return config

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        if isinstance(target, IA3Layer):  # a second adapter on an already wrapped layer stays inactive
            target.update_layer(adapter_name, config.init_ia3_weights)
            return
        feedforward = is_feedforward_module(config, current_key)
        quantized = dispatch_bnb(target, feedforward)  # (IA)^3 on a Linear4bit / Linear8bitLt, or None
        if quantized is not None:
            new = quantized
        elif isinstance(target, Conv1D):
            if not config.fan_in_fan_out:
                warnings.warn("fan_in_fan_out is set to False but the target module is `Conv1D`. "
                              "Setting fan_in_fan_out to True.")
                config.fan_in_fan_out = True
            new = Linear(target, is_feedforward=feedforward, fan_in_fan_out=True)
        elif isinstance(target, nn.Linear):
            if config.fan_in_fan_out:
                warnings.warn("fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. "
                              "Setting fan_in_fan_out to False.")
                config.fan_in_fan_out = False
            new = Linear(target, is_feedforward=feedforward)
        elif isinstance(target, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            new = (Conv1d, Conv2d, Conv3d)[len(target.kernel_size) - 1](target, is_feedforward=feedforward)
        else:
            raise ValueError(
                f"Target module {current_key} ({type(target).__name__}) is not supported. tinypeft's (IA)^3 works "
                "on Linear, GPT-2's Conv1D, Conv1d, Conv2d and Conv3d layers."
            )
        new.set_adapter(self.active_adapters)
        new.update_layer(adapter_name, config.init_ia3_weights)
        setattr(parent, target_name, new)

    def add_weighted_adapter(self, adapters, weights, adapter_name):
        """A new adapter whose vectors are sum_i w_i l_i (per layer, over the adapters that have that layer)."""
        if adapter_name in self.peft_config:
            return
        for a in adapters:
            if a not in self.peft_config:
                raise ValueError(f"Adapter {a} does not exist")
        wrappers = [m for m in self.model.modules() if isinstance(m, ModulesToSaveWrapper)]
        if any(sum(a in w.modules_to_save for a in adapters) > 1 for w in wrappers):
            raise ValueError("Cannot add weighted adapters targeting the same module with modules_to_save.")
        configs = [self.peft_config[a] for a in adapters]
        if len({type(c.target_modules) for c in configs}) > 1 or len({type(c.feedforward_modules) for c in configs}) > 1:
            raise ValueError("All adapter configs should have the same type for target and feedforward modules.")

        def union(field):
            values = [getattr(c, field) for c in configs]
            if isinstance(values[0], str):
                return "|".join(f"({v})" for v in values)
            return set().union(*values)

        config = dataclasses.replace(configs[0], target_modules=union("target_modules"),
                                     feedforward_modules=union("feedforward_modules"))
        self.peft_config[adapter_name] = config
        self.inject_adapter(self.model, adapter_name)
        for layer in self.tuner_layers():
            if adapter_name not in layer.ia3_l:
                continue
            new = np.zeros(layer.ia3_l[adapter_name].shape, np.float32)
            for a, w in zip(adapters, weights):
                if a in layer.ia3_l:
                    new += layer.ia3_l[a].data * w
            layer.ia3_l[adapter_name].data = new
            layer.ia3_l[adapter_name].requires_grad = False  # PEFT freezes it (_freeze_adapter)
