"""FourierFT layers: per adapter a trained spectrum `fourierft_spectrum` [n] at n fixed frequencies of the
[out, in] weight grid,

    delta W = Re(ifft2(D)) * scaling,  D[rows, cols] = spectrum                 y = base(x) + x delta W^T

(ops/fourier.py holds the op and its backward). The positions are not saved in the adapter file: PEFT draws them
with torch.randperm(out * in, generator=torch.Generator().manual_seed(random_loc_seed)), so torch_randperm below
reproduces that draw bit for bit (without torch) and an adapter moves between PEFT and tinypeft unchanged.
"""
import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....creation import generator
from ..tuners_utils import DeltaWeightLayer


def torch_randperm(n, seed):
    """torch.randperm(n) on a CPU generator seeded with `seed`: a Fisher-Yates shuffle driven by mt19937.

    torch seeds its mt19937 like the reference init_genrand (NumPy's legacy RandomState does the same), and for
    n < 2**32 / 20 swaps r[i] with r[i + (u_i mod (n - i))] for i < n - 1, u_i its i-th raw 32-bit output. The
    seed's low 32 bits seed mt19937, as torch's do (a fresh torch.Generator() holds 67280421310721)."""
    raw = np.random.RandomState(seed & 0xFFFFFFFF).randint(0, 2 ** 32, size=max(n - 1, 0), dtype=np.uint32).tolist()
    perm = list(range(n))
    for i, u in enumerate(raw):
        z = i + u % (n - i)
        perm[i], perm[z] = perm[z], perm[i]
    return np.array(perm, dtype=np.int64)


class FourierFTLayer(DeltaWeightLayer):
    adapter_layer_names = ("fourierft_spectrum",)
    other_param_names = ("fourierft_n_frequency", "fourierft_scaling", "fourierft_random_loc_seed", "indices")

    def __init__(self, base_layer, fan_in_fan_out=False):
        super().__init__(base_layer, fan_in_fan_out)
        self.fourierft_n_frequency, self.fourierft_scaling, self.fourierft_random_loc_seed = {}, {}, {}
        self.indices = {}
        self.fourierft_spectrum = nn.ParameterDict({})

    def update_layer(self, adapter_name, n_frequency, config):
        if n_frequency <= 0:
            raise ValueError(f"`n_frequency` should be a positive integer value but the value passed is {n_frequency}")
        if n_frequency > self.in_features * self.out_features:
            raise ValueError(f"`n_frequency` should be less than or equal to the product of the input and output "
                             f"dimensions but the value passed is {n_frequency} and the product is "
                             f"{self.in_features * self.out_features}")
        self.fourierft_n_frequency[adapter_name] = n_frequency
        self.fourierft_random_loc_seed[adapter_name] = config.random_loc_seed
        flat = torch_randperm(self.out_features * self.in_features, config.random_loc_seed)[:n_frequency]
        self.indices[adapter_name] = np.stack([flat // self.in_features, flat % self.in_features])  # [2, n]
        self.fourierft_scaling[adapter_name] = config.scaling
        spectrum = nn.Parameter(np.zeros(n_frequency, dtype=np.float32))
        if not config.init_weights:
            with no_grad():
                spectrum.data = generator().standard_normal(n_frequency).astype(np.float32)
        self.fourierft_spectrum[adapter_name] = spectrum
        self.set_adapter(self.active_adapters)

    def delta(self, adapter):
        """delta W [out, in] as a Tensor (differentiable in the spectrum)."""
        rows, cols = self.indices[adapter]
        dw = F.sparse_ifft2_real(self.fourierft_spectrum[adapter], rows, cols, (self.out_features, self.in_features))
        return dw * self.fourierft_scaling[adapter]


class FourierFTLinear(FourierFTLayer):
    """FourierFT around nn.Linear or GPT-2's Conv1D (weight stored [in, out]: fan_in_fan_out)."""
