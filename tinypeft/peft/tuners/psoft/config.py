"""PsoftConfig: PEFT's fields and defaults for PSOFT."""
import warnings
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftType, TargetModulesConfig


@dataclass
class PsoftConfig(TargetModulesConfig):
    """PSOFT: delta W = (psoft_alpha / r) B (R - I) A, with A [r, in] and B [out, r] frozen, taken from the base
    weight's top-r SVD W ~ U S V^T, and only the r x r matrix R trained.

    ab_svd_init: "psoft_init" (A = V_r^T, B = U_r S_r / scaling) or "pissa_init" (both take sqrt(S_r / scaling)).
    psoft_svd: "full" (exact SVD) or "lowrank" (torch.svd_lowrank; not implemented by tinypeft).
    psoft_orth: R = cayley of a skew matrix (psoft_R.weight holds its upper triangle), or a free R (False).
    psoft_mag_a / psoft_mag_b: trained scales on R's columns / rows. use_cayley_neumann: the truncated series
    (num_cayley_neumann_terms; cayley_neumann_eps bounds ||Q||_F) instead of the exact inverse.
    init_weights: True makes R = I (a no-op); False perturbs it (for tests).
    """

    r: int = 32
    exclude_modules: Optional[Union[list, str]] = None
    psoft_alpha: int = 32
    psoft_dropout: float = 0.0
    fan_in_fan_out: bool = False
    ab_svd_init: str = "psoft_init"
    psoft_svd: str = "full"
    psoft_svd_lowrank_niter: int = 10
    random_seed: int = 0
    psoft_orth: bool = True
    psoft_mag_b: bool = True
    psoft_mag_a: bool = True
    use_cayley_neumann: bool = False
    num_cayley_neumann_terms: int = 5
    cayley_neumann_eps: Optional[float] = None
    init_weights: bool = True

    _r_min = None  # checked below with PEFT's message
    _refused_with_regex = ("layers_to_transform", "layers_pattern")

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.PSOFT
        if self.r <= 0:
            raise ValueError(f"`r` must be a positive integer; got {self.r}.")
        for name, allowed in (("ab_svd_init", ["pissa_init", "psoft_init"]), ("psoft_svd", ["full", "lowrank"])):
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}; got {getattr(self, name)!r}.")
        if self.psoft_svd == "lowrank":
            raise NotImplementedError("PsoftConfig(psoft_svd='lowrank') is not implemented by tinypeft: "
                                      "torch.svd_lowrank's random projection cannot be reproduced; use 'full'.")
        if self.psoft_svd_lowrank_niter != 10:
            warnings.warn("`psoft_svd_lowrank_niter` is only used when `psoft_svd='lowrank'`. "
                          f"Got psoft_svd={self.psoft_svd!r}, so psoft_svd_lowrank_niter="
                          f"{self.psoft_svd_lowrank_niter} will be ignored.", UserWarning)
        if self.use_cayley_neumann:
            if self.num_cayley_neumann_terms <= 0:
                raise ValueError("`num_cayley_neumann_terms` must be a positive integer; got "
                                 f"{self.num_cayley_neumann_terms}.")
            if self.cayley_neumann_eps is not None and not 0.0 < self.cayley_neumann_eps < 1.0:
                raise ValueError(f"`cayley_neumann_eps` must be in (0, 1) when set; got {self.cayley_neumann_eps}.")
        else:
            for name, default in (("num_cayley_neumann_terms", 5), ("cayley_neumann_eps", None)):
                if getattr(self, name) != default:
                    warnings.warn(f"`{name}` is only used when `use_cayley_neumann=True`. Since "
                                  f"`use_cayley_neumann=False`, `{name}={getattr(self, name)}` will be ignored.",
                                  UserWarning)
