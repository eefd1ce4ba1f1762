"""PSOFT layers: per adapter an OrthLayer psoft_R (trained) between frozen factors A [r, in] and B [out, r]
(non-persistent buffers _psoft_A_cache / _psoft_B_cache, rebuilt from the base weight's SVD on load):

    xa = dropout(x) A^T                             [.., r]
    y = base(x) + s ((xa R^T - xa) B^T)             [.., out]      s = psoft_alpha / r
    delta W = s B (R - I) A

R = diag(vector_b) C diag(vector_a), with C = (I + Q)(I - Q)^{-1} = cayley(-Q) for the skew Q built from
psoft_R.weight (ops/cayley.py derives its backward), PEFT's Cayley-Neumann series in Q (matmuls), or a free
matrix (psoft_orth=False). Everything else is matmuls and products: autograd gives the gradients.
"""
import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....creation import generator
from ....tensor import Tensor
from ..oft.layer import neumann_cayley, skew
from ..tuners_utils import BaseTunerLayer
from ..vera.layer import BufferDict


class OrthLayer(nn.Module):
    """The r x r matrix R of one adapter (PEFT's OrthLayer): forward(x) = x R^T."""

    def __init__(self, size, orth=True, mag_b=True, mag_a=True, use_cayley_neumann=False,
                 num_cayley_neumann_terms=5, cayley_neumann_eps=None):
        super().__init__()
        self.size, self.orth, self.mag_b, self.mag_a = size, orth, mag_b, mag_a
        self.use_cayley_neumann, self.num_cayley_neumann_terms = use_cayley_neumann, num_cayley_neumann_terms
        self.cayley_neumann_eps = cayley_neumann_eps
        shape = (size * (size - 1) // 2,) if orth else (size, size)
        self.weight = nn.Parameter(np.zeros(shape, dtype=np.float32))
        self.vector_b = nn.Parameter(np.ones(size, dtype=np.float32)) if mag_b else None
        self.vector_a = nn.Parameter(np.ones(size, dtype=np.float32)) if mag_a else None

    def reset_parameters(self, init_weights=True):
        """R = I (orth: Q = 0), magnitudes 1; init_weights=False adds N(0, 0.1) noise to Q (or to the free R)."""
        value = np.zeros(self.weight.shape) if self.orth else np.eye(self.size)
        if not init_weights:
            value = value + generator().standard_normal(self.weight.shape) * 0.1
        self.weight.data = value.astype(np.float32)

    def _generator(self):
        """Q [r, r], skew-symmetric, scaled back onto ||Q||_F <= eps for the series when eps is set."""
        Q = skew(self.weight.reshape(1, -1), self.size)[0]
        eps = self.cayley_neumann_eps
        if self.use_cayley_neumann and eps is not None:
            norm = (Q * Q).sum().sqrt()
            if np.isfinite(norm.data) and norm.data > eps:
                Q = Q * (eps / (norm + 1e-12))
        return Q

    def get_matrix(self):
        if not self.orth:
            R = self.weight
        elif self.use_cayley_neumann:
            R = neumann_cayley(self._generator(), int(self.num_cayley_neumann_terms))
        else:
            R = F.cayley(-self._generator())  # (I + Q)(I - Q)^{-1}
        if self.vector_b is not None:
            R = self.vector_b.reshape(-1, 1) * R
        if self.vector_a is not None:
            R = R * self.vector_a.reshape(1, -1)
        return R

    def forward(self, x):
        return x @ self.get_matrix().T


def svd_factors(W, r, scaling, init_type):
    """(A [r, in], B [out, r]) from W's top-r SVD W ~ U S V^T: psoft_init A = V^T, B = U S / scaling; pissa_init
    splits sqrt(S / scaling) between them."""
    U, S, Vh = np.linalg.svd(W.astype(np.float32), full_matrices=False)
    U, S, Vh = U[:, :r], S[:r] / scaling, Vh[:r]
    if init_type == "psoft_init":
        return Vh, U * S
    root = np.sqrt(S)
    return root[:, None] * Vh, U * root


class PsoftLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("psoft_R",)
    other_param_names = ("r", "psoft_alpha", "scaling", "psoft_dropout", "psoft_svd", "psoft_svd_lowrank_niter",
                         "random_seed", "ab_svd_init", "_psoft_A_cache", "_psoft_B_cache")

    def __init__(self, base_layer):
        super().__init__()
        self._init_linear_tuner(base_layer, ValueError(f"Target module {base_layer} is not supported by minimal "
                                                       "PSOFT. Only torch.nn.Linear is supported."))
        self.fan_in_fan_out = False
        for name in self.other_param_names[:-2]:
            setattr(self, name, {})
        self.psoft_R = nn.ModuleDict({})
        self._psoft_A_cache, self._psoft_B_cache = BufferDict(persistent=False), BufferDict(persistent=False)

    def update_layer(self, adapter_name, r, config):
        r = int(r)
        if r > min(self.in_features, self.out_features):
            raise ValueError(f"`r` ({r}) must be less than or equal to min(in_features, out_features) "
                             f"({self.in_features}, {self.out_features})")
        for name in self.other_param_names[:-2]:
            getattr(self, name)[adapter_name] = getattr(config, name, None)
        self.r[adapter_name], self.scaling[adapter_name] = r, config.psoft_alpha / r
        self.psoft_R[adapter_name] = OrthLayer(r, config.psoft_orth, config.psoft_mag_b, config.psoft_mag_a,
                                               config.use_cayley_neumann, config.num_cayley_neumann_terms,
                                               config.cayley_neumann_eps)
        self.psoft_R[adapter_name].reset_parameters(config.init_weights)
        A, B = svd_factors(self.base_layer.weight.data, r, self.scaling[adapter_name], config.ab_svd_init)
        self._psoft_A_cache[adapter_name] = Tensor(np.ascontiguousarray(A))
        self._psoft_B_cache[adapter_name] = Tensor(np.ascontiguousarray(B))
        self.set_adapter(self.active_adapters)

    def get_delta_weight(self, adapter):
        """s B (R - I) A [out, in], an array."""
        A, B = self._psoft_A_cache[adapter].data, self._psoft_B_cache[adapter].data
        with no_grad():
            R = self.psoft_R[adapter].get_matrix().data
        return (B @ (R - np.eye(R.shape[0], dtype=R.dtype)) @ A) * self.scaling[adapter]

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.psoft_R)
        result = self.base_layer(x, *args, **kwargs)
        for adapter in active:
            xa = F.linear(self._dropout(x, self.psoft_dropout[adapter]), self._psoft_A_cache[adapter])  # [.., r]
            xr = self.psoft_R[adapter](xa)  # [.., r]
            result = result + F.linear(xr - xa, self._psoft_B_cache[adapter]) * self.scaling[adapter]
        return result


class PsoftLinear(PsoftLayer):
    """PSOFT around nn.Linear."""
