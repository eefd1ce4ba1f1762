"""VeraModel: draws the shared projections vera_A / vera_B once per adapter and puts VeRA layers on the targets.

The projections are sized for the largest target layer (each layer slices its own [:out, :in]) and live on the
tuner as `base_model.vera_A.<adapter>` (the key PEFT saves, without the adapter name) and, as the same object,
inside every layer (shared_projections.py). PveraModel is this tuner under PVeRA's names (shared_state_names,
layer_class) with an A of twice the rows.
"""
import math

import numpy as np

from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..shared_projections import SharedProjectionTuner
from .layer import Linear, VeraLayer


def _kaiming_uniform(shape, rng):
    """U(-b, b), b = sqrt(3) * sqrt(2) / sqrt(fan_in): PEFT's _kaiming_init (gain sqrt 2), with our own generator."""
    bound = math.sqrt(3.0) * math.sqrt(2) / math.sqrt(shape[1])
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


class VeraModel(SharedProjectionTuner):
    prefix = "vera_lambda_"
    layer_class = VeraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT's VeRA table equals LoRA's here
    shared_state_names = ("vera_A", "vera_B")  # saved once, as base_model.vera_A / base_model.vera_B
    method_name, linear_class = "VeRA", Linear

    def inject_adapter(self, model, adapter_name):
        self._check_new_adapter_config(self.peft_config[adapter_name])  # before anything is stored
        config = self._prepare_config(self.peft_config[adapter_name], model)
        drawn = self._modules.get(self.shared_state_names[0])
        if drawn:  # as PEFT: a later adapter shares the first one's projections (update_layer checks their sizes)
            first = next(iter(drawn.keys()))
            self._set_shared(adapter_name, *(getattr(self, name)[first].data for name in self.shared_state_names))
        else:
            out_dim, in_dim = self._largest_target(config, model)
            rng = np.random.default_rng(config.projection_prng_key)
            A = _kaiming_uniform((self.layer_class.a_rows * config.r, in_dim), rng)  # [a_rows * r, in_max]
            self._set_shared(adapter_name, A, _kaiming_uniform((out_dim, config.r), rng))  # B [out_max, r]
        super().inject_adapter(model, adapter_name)

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, lambda t: self._new_layer(config, t, current_key),
                           lambda layer: layer.update_layer(adapter_name, config.r, config))
