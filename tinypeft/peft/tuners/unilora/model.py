"""UniLoraModel: one trained vector theta_d per adapter (`base_model.unilora_theta_d.<adapter>`, the one tensor
PEFT saves), and after injection a balanced random assignment of its entries to every factor entry of every layer.
"""
import numpy as np

from .... import nn
from ....creation import generator
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, new_linear_layer
from .layer import Linear, UniLoraLayer


def generate_index(lora_param_count, theta_d_length, proj_seed):
    """PEFT's assignment, drawn with the same NumPy calls: each of the L entries used count // L times, the
    remainder given to distinct random entries, the whole shuffled."""
    rng = np.random.default_rng(proj_seed)
    base_count, remaining = divmod(lora_param_count, theta_d_length)
    data = np.repeat(np.arange(theta_d_length), base_count)
    if remaining > 0:
        data = np.concatenate([data, rng.choice(theta_d_length, size=remaining, replace=False)])
    rng.shuffle(data)
    return data.astype(np.int64)


class UniLoraModel(BaseTuner):
    prefix = "unilora_"
    shared_state_names = ("unilora_theta_d",)
    layer_class = UniLoraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # PEFT copies LoRA's table

    def inject_adapter(self, model, adapter_name):
        thetas, config = self._shared_state(nn.ParameterDict), self.peft_config[adapter_name]
        if config.init_weights:
            theta = generator().uniform(-config.init_theta_d_bound, config.init_theta_d_bound, config.theta_d_length)
        else:
            theta = generator().standard_normal(config.theta_d_length)
        thetas[adapter_name] = nn.Parameter(theta.astype(np.float32))
        super().inject_adapter(model, adapter_name)
        self._assign_indices_and_scales(adapter_name)

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent,
                           lambda t: new_linear_layer(lambda b, fan_in_fan_out: Linear(
                               b, self.unilora_theta_d, fan_in_fan_out), t, config),
                           lambda layer: layer.update_layer(adapter_name, config))

    def _assign_indices_and_scales(self, adapter_name):
        """The layers in module order, each taking its A's then its B's share of one shuffled index array."""
        config = self.peft_config[adapter_name]
        layers = [m for m in self.tuner_layers() if adapter_name in m.unilora_indices_A]
        sizes = [(m.r[adapter_name] * m.in_features, m.out_features * m.r[adapter_name]) for m in layers]
        indices = generate_index(sum(a + b for a, b in sizes), config.theta_d_length, config.proj_seed)
        counts = np.bincount(indices, minlength=config.theta_d_length)
        inv_sqrt = np.zeros(config.theta_d_length, np.float32)
        inv_sqrt[counts > 0] = 1 / np.sqrt(counts[counts > 0].astype(np.float32))
        start = 0
        for m, (a, b) in zip(layers, sizes):
            A = indices[start: start + a].reshape(m.r[adapter_name], m.in_features)
            B = indices[start + a: start + a + b].reshape(m.out_features, m.r[adapter_name])
            m.set_indices(adapter_name, A, B, inv_sqrt)
            start += a + b
