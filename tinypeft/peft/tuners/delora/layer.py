"""DeLoRA layers: per adapter delora_A [r, in], delora_B [out, r], a trained bound delora_lambda [1], and the base
weight's column norms delora_w_norm [in] (a saved buffer, fixed at creation):

    h = (dropout(x) * w_norm) A^T                              [.., r]
    y = base(x) + (h * lambda / (r ||A_i|| ||B_:,i||)) B^T      norms clamped at 1e-4
    delta W = B diag(lambda / (r ||A_i|| ||B_:,i||)) A diag(w_norm)

Norms are sqrt(sum(x^2)) and the clamp a `where` on a constant mask: proven ops, gradients by autograd (through the
norms too, as in PEFT).
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....ops.shape import where
from ....tensor import Tensor
from ..tuners_utils import AdapterLayer
from ..vera.layer import BufferDict


def _clamped_norm(t, dim):
    n = (t * t).sum(dim).sqrt()
    return where(n.data >= 1e-4, n, Tensor(np.full(n.shape, 1e-4, dtype=n.dtype)))


class DeloraLayer(AdapterLayer):
    adapter_layer_names = ("delora_A", "delora_B", "delora_lambda")
    other_param_names = ("r", "delora_dropout", "delora_w_norm")

    def __init__(self, base_layer):
        super().__init__(base_layer)
        self.r, self.delora_dropout = {}, {}
        self.delora_A, self.delora_B, self.delora_lambda = (nn.ParameterDict({}), nn.ParameterDict({}),
                                                            nn.ParameterDict({}))
        self.delora_w_norm = BufferDict()

    def update_layer(self, adapter_name, r, delora_lambda, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[adapter_name], self.delora_dropout[adapter_name] = r, config.module_dropout
        A, B = nn.Parameter(nn.init.empty(r, self.in_features)), nn.Parameter(nn.init.empty(self.out_features, r))
        with no_grad():
            nn.init.kaiming_uniform_(A, a=math.sqrt(5))
            if config.init_weights is True:
                nn.init.zeros_(B)
            else:
                nn.init.kaiming_uniform_(B, a=math.sqrt(5))
        self.delora_A[adapter_name], self.delora_B[adapter_name] = A, B
        self.delora_lambda[adapter_name] = nn.Parameter(np.full(1, float(delora_lambda), dtype=np.float32))
        w_norm = np.linalg.norm(self.base_layer.weight.data, axis=0).astype(np.float32)  # [in]
        self.delora_w_norm[adapter_name] = Tensor(w_norm)
        self.set_adapter(self.active_adapters)

    def _scale(self, adapter):
        """lambda / (r ||A_i|| ||B_:,i||): [r]."""
        A, B = self.delora_A[adapter], self.delora_B[adapter]
        return (self.delora_lambda[adapter] / self.r[adapter]) / (_clamped_norm(A, 1) * _clamped_norm(B, 0))

    def get_delta_weight(self, adapter):
        with no_grad():
            A, B = self.delora_A[adapter].data, self.delora_B[adapter].data
            return (B * self._scale(adapter).data[None, :]) @ A * self.delora_w_norm[adapter].data[None, :]

    def adapter_output(self, x, adapter):
        x = F.dropout(x, self.delora_dropout[adapter], self.training)
        h = F.linear(x * self.delora_w_norm[adapter], self.delora_A[adapter]) * self._scale(adapter)
        return F.linear(h, self.delora_B[adapter])


class DeloraLinear(DeloraLayer):
    """DeLoRA around nn.Linear."""
