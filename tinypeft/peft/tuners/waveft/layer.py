"""WaveFT layers: per adapter a trained vector `waveft_spectrum` [n] of wavelet coefficients at fixed positions of
a (padded) [H, W] grid C, and

    delta W = crop(idwt2(C)) * scaling        y = base(x) + x delta W^T          (use_idwt=False: delta W = C * s)

One level of the inverse 2-D wavelet transform (PEFT's waverec2d: a stride-2 transposed convolution with the four
outer products of the reconstruction filters lo, hi, then (2L-3)//2 cropped off each side) is separable and
linear. With U_f the [2n + L - 2, n] upsample-and-filter matrix, U_f[2i + k, i] = f[k], cropped the same way
and then to the layer's size (centred), and C's quadrants [[cA, cH], [cV, cD]]:

    idwt2(C) = U_lo cA U_lo'^T + U_hi cH U_lo'^T + U_lo cV U_hi'^T + U_hi cD U_hi'^T      (' : the column side)

so delta W is matmuls of constants with slices of C, and C is a gather from [0, spectrum]: proven ops, gradients
by autograd. The positions come from torch_randperm (FourierFT's exact copy of torch.randperm), as in PEFT.
"""
import math

import numpy as np

from .... import nn
from ....creation import generator
from ....ops.shape import cat
from ....tensor import Tensor
from ..fourierft.layer import torch_randperm
from ..tuners_utils import DeltaWeightLayer


def rec_filters(name):
    """(rec_lo, rec_hi) as PyWavelets and PEFT define them: rec_lo = the scaling coefficients c, rec_hi[i] =
    (-1)^i c[L-1-i]. db1: c = (1, 1)/sqrt 2; db2 (= PEFT's sym2): Daubechies' closed form (1+-sqrt 3, 3+-sqrt 3)/(4 sqrt 2)."""
    if name == "db1":
        c = np.array([1.0, 1.0]) / math.sqrt(2)
    elif name in ("db2", "sym2"):
        s = math.sqrt(3)
        c = np.array([1 + s, 3 + s, 3 - s, 1 - s]) / (4 * math.sqrt(2))
    else:
        raise NotImplementedError(f"wavelet {name!r} is not implemented by tinypeft; use 'db1', 'db2' or 'sym2'.")
    L = len(c)
    return c, np.array([(-1) ** i * c[L - 1 - i] for i in range(L)])


def synthesis(f, n, size):
    """[size, n]: n coefficients upsampled by 2 and filtered with f, cropped by (2L-3)//2 each side, then centred."""
    L = len(f)
    U = np.zeros((2 * n + L - 2, n))
    for i in range(n):
        U[2 * i: 2 * i + L, i] = f
    pad = (2 * L - 3) // 2
    U = U[pad: U.shape[0] - pad] if pad > 0 else U
    start = (U.shape[0] - size) // 2
    return U[start: start + size]


class WaveFTLayer(DeltaWeightLayer):
    adapter_layer_names = ("waveft_spectrum",)
    other_param_names = ("waveft_n_frequency", "waveft_scaling", "waveft_random_loc_seed", "waveft_wavelet_family",
                         "waveft_indices", "waveft_use_idwt")

    def __init__(self, base_layer, fan_in_fan_out=False):
        super().__init__(base_layer, fan_in_fan_out)
        self.waveft_n_frequency, self.waveft_scaling, self.waveft_random_loc_seed = {}, {}, {}
        self.waveft_wavelet_family, self.waveft_indices, self.waveft_use_idwt = {}, {}, {}
        self.waveft_spectrum = nn.ParameterDict({})
        self._grids = {}  # adapter -> (gather index into [0, spectrum], grid shape, synthesis matrices)

    def update_layer(self, adapter_name, n_frequency, config):
        out, inp = self.out_features, self.in_features
        if n_frequency <= 0:
            raise ValueError(f"`n_frequency` should be a positive integer value but the value passed is {n_frequency}")
        if n_frequency > inp * out:
            raise ValueError(f"`n_frequency` should be less than or equal to the product of the input and output "
                             f"dimensions but the value passed is {n_frequency} and the product is {inp * out}")
        self.waveft_n_frequency[adapter_name] = n_frequency
        self.waveft_random_loc_seed[adapter_name] = config.random_loc_seed
        self.waveft_wavelet_family[adapter_name] = config.wavelet_family
        self.waveft_use_idwt[adapter_name] = config.use_idwt
        flat = torch_randperm(out * inp, config.random_loc_seed)[:n_frequency]
        self.waveft_indices[adapter_name] = np.stack([flat // inp, flat % inp])  # [2, n]
        self.waveft_scaling[adapter_name] = config.scaling
        self._grids[adapter_name] = self._grid(adapter_name)
        spectrum = nn.Parameter(np.zeros(n_frequency, dtype=np.float32))
        if not config.init_weights:
            spectrum.data = (generator().standard_normal(n_frequency) * 0.01).astype(np.float32)
        self.waveft_spectrum[adapter_name] = spectrum
        self.set_adapter(self.active_adapters)

    def _grid(self, adapter):
        rows, cols = self.waveft_indices[adapter]
        out, inp = self.out_features, self.in_features
        if not self.waveft_use_idwt[adapter]:
            H, W, mats = out, inp, None
            r, c = rows, cols
        else:
            lo, hi = rec_filters(self.waveft_wavelet_family[adapter])
            H, W = out + len(lo) - 2, inp + len(lo) - 2  # PEFT pads by the wavelet's reduction, then to even
            H, W = H + H % 2, W + W % 2
            r, c = rows + (H - out) // 2, cols + (W - inp) // 2
            mats = [synthesis(lo, H // 2, out), synthesis(hi, H // 2, out),   # the row side
                    synthesis(lo, W // 2, inp), synthesis(hi, W // 2, inp)]   # the column side
        index = np.zeros(H * W, dtype=np.int64)
        index[r * W + c] = 1 + np.arange(len(r))
        return index, (H, W), mats

    def delta(self, adapter):
        """delta W [out, in] as a Tensor (differentiable in the spectrum)."""
        spectrum = self.waveft_spectrum[adapter]
        index, (H, W), mats = self._grids[adapter]
        padded = cat([Tensor(np.zeros(1, dtype=spectrum.dtype)), spectrum], dim=0)
        C = padded[index].reshape(H, W)
        s = self.waveft_scaling[adapter]
        if mats is None:
            return C * s
        r_lo, r_hi, c_lo, c_hi = (Tensor(m.astype(spectrum.dtype)) for m in mats)
        H2, W2 = H // 2, W // 2
        cA, cH, cV, cD = C[:H2, :W2], C[:H2, W2:], C[H2:, :W2], C[H2:, W2:]
        c_lo_t, c_hi_t = c_lo.transpose(0, 1), c_hi.transpose(0, 1)
        rec = r_lo @ cA @ c_lo_t + r_hi @ cH @ c_lo_t + r_lo @ cV @ c_hi_t + r_hi @ cD @ c_hi_t
        return rec * s

    def delete_adapter(self, adapter_name):
        super().delete_adapter(adapter_name)
        self._grids.pop(adapter_name, None)


class WaveFTLinear(WaveFTLayer):
    """WaveFT around nn.Linear or GPT-2's Conv1D (weight stored [in, out]: fan_in_fan_out)."""
