"""VeraModel: draws the shared projections vera_A / vera_B once per adapter and puts VeRA layers on the targets.

The projections are sized for the largest target layer (each layer slices its own [:out, :in]) and live on the
tuner as `base_model.vera_A.<adapter>` (the key PEFT saves, without the adapter name) and, as the same object,
inside every layer, so the state dict lists them under each path as PEFT's does. PveraModel is this tuner under
PVeRA's names (shared_state_names, layer_class) with an A of twice the rows.
"""
import math

import numpy as np

from .... import nn
from ....models.gpt2 import Conv1D
from ....tensor import Tensor
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, check_target_module_exists, linear_fan_in_fan_out, linear_in_out
from .layer import BufferDict, Linear, VeraLayer


def _kaiming_uniform(shape, rng):
    """U(-b, b), b = sqrt(3) * sqrt(2) / sqrt(fan_in): PEFT's _kaiming_init (gain sqrt 2), with our own generator."""
    bound = math.sqrt(3.0) * math.sqrt(2) / math.sqrt(shape[1])
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


class VeraModel(BaseTuner):
    prefix = "vera_lambda_"
    layer_class = VeraLayer
    linear_class = Linear
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT's VeRA table equals LoRA's here
    shared_state_names = ("vera_A", "vera_B")  # saved once, as base_model.vera_A / base_model.vera_B

    def _check_new_adapter_config(self, config):
        super()._check_new_adapter_config(config)
        keys = {c.projection_prng_key for c in self.peft_config.values()}
        if len(keys) > 1:
            raise ValueError(f"{self.layer_class.method.capitalize()} PRNG initialisation key must be the same for "
                             f"all adapters. Got {sorted(keys)}.")

    def inject_adapter(self, model, adapter_name):
        self._check_new_adapter_config(self.peft_config[adapter_name])
        config = self._prepare_config(self.peft_config[adapter_name], model)
        sizes = [linear_in_out(m.base_layer if isinstance(m, self.layer_class) else m)[::-1]
                 for key, m in model.named_modules()
                 if key and isinstance(m, (nn.Linear, Conv1D, self.layer_class))
                 and check_target_module_exists(config, key)]
        if not sizes:
            raise ValueError(f"No layers types compatible with {self.layer_class.method.upper()} were found. Please "
                             "check `peft_config.target_modules`.")
        out_dim, in_dim = max(s[0] for s in sizes), max(s[1] for s in sizes)
        if self.shared_state_names[0] not in self._modules:
            for name in self.shared_state_names:
                setattr(self, name, BufferDict())
        rng = np.random.default_rng(config.projection_prng_key)
        A = _kaiming_uniform((self.layer_class.a_rows * config.r, in_dim), rng)  # [a_rows * r, in_max]
        B = _kaiming_uniform((out_dim, config.r), rng)                          # [out_max, r]
        for name, value in zip(self.shared_state_names, (A, B)):
            getattr(self, name)[adapter_name] = Tensor(value)
        super().inject_adapter(model, adapter_name)

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, lambda t: self._new_layer(config, t, current_key),
                           lambda layer: layer.update_layer(adapter_name, config.r, config))

    def _new_layer(self, config, target, current_key):
        fan_in_fan_out = linear_fan_in_fan_out(config, target)
        if fan_in_fan_out is not None:
            shared = (getattr(self, name) for name in self.shared_state_names)
            return self.linear_class(target, *shared, fan_in_fan_out=fan_in_fan_out)
        raise ValueError(f"Target module {current_key} ({type(target).__name__}) is not supported. Currently, "
                         "only `torch.nn.Linear` and `Conv1D` are supported.")
