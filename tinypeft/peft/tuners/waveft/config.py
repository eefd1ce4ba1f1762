"""WaveFTConfig: PEFT's fields and defaults for WaveFT."""
import re
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import LinearTargetConfig, PeftType

# the families PEFT's WAVELET_REDUCTIONS names: db1-db38, sym2-sym20, coif1-coif17
_KNOWN = {"db": range(1, 39), "sym": range(2, 21), "coif": range(1, 18)}


def known_wavelet(name):
    m = re.fullmatch(r"(db|sym|coif)(\d+)", name)
    return bool(m) and int(m.group(2)) in _KNOWN[m.group(1)]


@dataclass
class WaveFTConfig(LinearTargetConfig, peft_type=PeftType.WAVEFT, r_min=None,
                   refused_with_regex=("layers_to_transform", "layers_pattern")):
    """WaveFT: delta W = idwt2(C) * scaling, C zero except n_frequency trained coefficients (`waveft_spectrum`) at
    positions drawn once with torch.randperm under random_loc_seed; use_idwt=False uses C itself as delta W.

    wavelet_family: the wavelet of the one-level inverse 2-D transform (tinypeft builds db1 and db2/sym2; the other
    families PEFT knows are refused with NotImplementedError). proportional_parameters: n_frequency * layers spread
    over the targets in proportion to their sizes. init_weights: True starts at zero (a no-op); False draws N(0, 0.01^2).
    """

    n_frequency: int = 2592
    scaling: float = 25.0
    wavelet_family: str = "db1"
    use_idwt: bool = True
    random_loc_seed: int = 777
    exclude_modules: Optional[Union[list, str]] = None
    n_frequency_pattern: Optional[dict] = field(default_factory=dict)
    proportional_parameters: bool = False
    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not known_wavelet(self.wavelet_family):
            raise ValueError(f"Wavelet family {self.wavelet_family} not supported. Supported wavelet families are: "
                             "db1-db38, sym2-sym20, coif1-coif17")
        if self.wavelet_family not in ("db1", "db2", "sym2"):
            raise NotImplementedError(f"WaveFTConfig(wavelet_family={self.wavelet_family!r}) is not implemented by "
                                      "tinypeft; use 'db1', 'db2' or 'sym2'.")
        if not 0 <= self.random_loc_seed < 2 ** 32:
            raise NotImplementedError(f"WaveFTConfig(random_loc_seed={self.random_loc_seed!r}): tinypeft reproduces "
                                      "torch's generator for seeds in [0, 2**32) only.")
