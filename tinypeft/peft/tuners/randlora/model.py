"""RandLoraModel: draws the shared random bases once per adapter and puts RandLoRA layers on the targets.

The bases are sized for the largest target (elementwise max of (out, in) over the targets) and live on the tuner as
`base_model.randlora_A.<adapter>` / `randlora_B` (PEFT's keys) and, as the same object, inside every layer. They are
drawn with tinypeft's generator under projection_prng_key (PEFT draws them with torch's), each standardised to unit
std; interchange with PEFT goes through the saved bases (save_projection=True).
"""
import math

import numpy as np

from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..shared_projections import SharedProjectionTuner
from .layer import Linear, RandLoraLayer, num_bases


def _kaiming_uniform(shape, rng):
    """PEFT's _kaiming_init: U(-b, b), b = sqrt(3) * sqrt(2) / sqrt(fan_in), fan_in = shape[1] * prod(shape[2:])."""
    fan_in = int(np.prod(shape[1:]))
    bound = math.sqrt(3.0) * math.sqrt(2) / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


def _ternary(shape, rng, sparsity):
    u = rng.random(shape)
    return np.where(u < 1 / (2 * sparsity), -1.0, np.where(u > 1 - 1 / (2 * sparsity), 1.0, 0.0))


class RandLoraModel(SharedProjectionTuner):
    prefix = "randlora_"
    layer_class = RandLoraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table
    shared_state_names = ("randlora_A", "randlora_B")  # saved once, as base_model.randlora_A / randlora_B
    method_name, linear_class = "RandLora", Linear

    def inject_adapter(self, model, adapter_name):
        config = self._prepare_config(self.peft_config[adapter_name], model)
        out_dim, in_dim = self._largest_target(config, model)
        hi, lo = max(out_dim, in_dim), min(out_dim, in_dim)
        rng, n = np.random.default_rng(config.projection_prng_key), num_bases(lo, config.r)
        if config.sparse or config.very_sparse:
            sparsity = math.sqrt(lo) if config.very_sparse else 3
            A, B = _ternary((config.r, 1, lo), rng, sparsity), _ternary((hi, n, config.r), rng, sparsity)
        else:
            A = _kaiming_uniform((config.r, 1, lo), rng)
            B = np.concatenate([_kaiming_uniform((hi, 1, config.r), rng) for _ in range(n)], axis=1)
        self._set_shared(adapter_name, *((M / M.std(ddof=1)).astype(np.float32) for M in (A, B)))  # torch.std: ddof=1
        super().inject_adapter(model, adapter_name)

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent, lambda t: self._new_layer(config, t, current_key),
                           lambda layer: layer.update_layer(adapter_name, config.r, config))
