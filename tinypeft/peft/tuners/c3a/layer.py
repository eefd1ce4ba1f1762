"""C3A layers: per adapter a kernel c3a_kernel [out/b, in/b, b]. PEFT computes, for x's blocks x_n [b],

    y_m[j] = sum_n fft(ifft(x_n) * fft(w[m, n]))[j] = sum_n sum_s w[m, n, s] x_n[(s + j) mod b]

(the DFT's exponentials cancel to a circular correlation), then divides by in_features. That is x delta W^T / in
with the block-circulant delta W[m b + j, n b + t] = w[m, n, (t - j) mod b]. tinypeft builds delta W by gathering
the kernel's entries into place (one fancy index: its backward scatter-adds), so only proven ops are used.
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....creation import generator
from ..tuners_utils import AdapterLayer


def block_circulant_index(M, N, b):
    """[M b, N b] flat indices into w [M, N, b]: entry (m b + j, n b + t) reads w[m, n, (t - j) mod b]."""
    m, j, n, t = np.ix_(np.arange(M), np.arange(b), np.arange(N), np.arange(b))
    return ((m * N + n) * b + (t - j) % b).reshape(M * b, N * b)


class C3ALayer(AdapterLayer):
    adapter_layer_names = ("c3a_kernel",)
    other_param_names = ("block_size",)

    def __init__(self, base_layer):
        super().__init__(base_layer)
        self.block_size, self.c3a_kernel = {}, nn.ParameterDict({})

    def update_layer(self, adapter_name, block_size, config):
        if block_size <= 0:
            raise ValueError(f"`block_size` should be a positive integer value but the value passed is {block_size}")
        for what, n in (("input", self.in_features), ("output", self.out_features)):
            if n % block_size != 0:
                raise ValueError(f"The block size should be a factor of the {what} size. However, the {what} size is "
                                 f"{n} and the block size is {block_size}")
        self.block_size[adapter_name] = block_size
        shape = (self.out_features // block_size, self.in_features // block_size, block_size)
        kernel = nn.Parameter(np.zeros(shape, dtype=np.float32))
        init, rng = config.init_weights, generator()
        with no_grad():
            if init == "gaussian":
                kernel.data = rng.standard_normal(shape).astype(np.float32)
            elif init in ("xavier_uniform", False):
                a = math.sqrt(3.0) * math.sqrt(2.0 / (self.in_features + self.out_features))
                kernel.data = rng.uniform(-a, a, shape).astype(np.float32)
            elif init == "kaiming_uniform":
                a = math.sqrt(1.0 / self.in_features)
                kernel.data = rng.uniform(-a, a, shape).astype(np.float32)
        self.c3a_kernel[adapter_name] = kernel
        self.set_adapter(self.active_adapters)

    def delta(self, adapter):
        """delta W [out, in] / in_features as a Tensor (differentiable in the kernel)."""
        w = self.c3a_kernel[adapter]
        M, N, b = w.shape
        return w.reshape(-1)[block_circulant_index(M, N, b)] / self.in_features

    def get_delta_weight(self, adapter):
        with no_grad():
            return self.delta(adapter).data

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.c3a_kernel)
        result = self.base_layer(x, *args, **kwargs)
        for adapter in active:
            x = F.linear(x, self.delta(adapter))  # as PEFT: a further adapter convolves this adapter's output
            result = result + x
        return result


class C3ALinear(C3ALayer):
    """C3A around nn.Linear."""
