"""PVeRA layers: VeRA's layer (vera/layer.py) under PVeRA's names, with a sampled middle step.

    h = lambda_d * (dropout(x) @ A^T)          [.., in] -> [.., 2r]      A [2r, in_max], lambda_d [2r]
    mu, logvar = h[..., :r], h[..., r:]
    z = mu + eps * exp(logvar / 2)   (training, or sample_at_inference; eps ~ N(0, 1))   else  z = mu
    y = base(x) + lambda_b * (z @ B^T)         [.., r] -> [.., out]      B [out_max, r], lambda_b [out]

Slices, products and exp: autograd derives the gradients from proven ops (d z / d logvar = eps * exp(logvar/2) / 2).
Merge keeps only the mean: delta W = (lambda_b[:, None] * B) @ (lambda_d[:r, None] * A[:r]).
"""
import numpy as np

from ....creation import generator
from ....tensor import Tensor
from ..vera.layer import VeraLayer


class PveraLayer(VeraLayer):
    method = "pvera"
    adapter_layer_names = ("pvera_lambda_b", "pvera_lambda_d")
    other_param_names = ("r", "pvera_dropout", "sample_at_inference", "pvera_generator")
    a_rows = 2

    def __init__(self, base_layer, A, B, fan_in_fan_out=False):
        super().__init__(base_layer, A, B, fan_in_fan_out)
        self.sample_at_inference, self.pvera_generator = {}, {}

    def update_layer(self, adapter_name, r, config):
        super().update_layer(adapter_name, r, config)
        self.sample_at_inference[adapter_name] = config.sample_at_inference
        seed = config.generator_seed  # one generator per adapter: adding one does not reset another's samples
        self.pvera_generator[adapter_name] = None if seed is None else np.random.default_rng(seed)

    def _middle(self, adapter, h):
        h = h * self._vectors(adapter)[1]
        r = self.r[adapter]
        mu, logvar = h[..., :r], h[..., r:]
        if not (self.training or self.sample_at_inference[adapter]):
            return mu
        eps = (self.pvera_generator[adapter] or generator()).standard_normal(mu.shape).astype(mu.dtype)
        return mu + Tensor(eps) * (logvar * 0.5).exp()


class Linear(PveraLayer):
    """PVeRA around nn.Linear (or GPT-2's Conv1D with fan_in_fan_out=True)."""
