"""The Cayley transform of a batch of square matrices: OFT's and BOFT's map from free parameters to rotations.

    R = (I - S)(I + S)^{-1}                  S [..., b, b]  ->  R [..., b, b]

For a skew-symmetric S (S^T = -S) R is orthogonal: R^T R = (I + S)^{-T}(I - S)^T(I - S)(I + S)^{-1}
= (I - S)^{-1}(I + S)(I - S)(I + S)^{-1} = I, since I + S and I - S commute. The op itself does not need S to
be skew (the callers build it so), which lets the gradient check draw any well-conditioned S.

Derivation of the backward (the tutorial's "Cayley by hand"). Write A = I + S. Then I - S = 2I - A, so

    R = (2I - A) A^{-1} = 2 A^{-1} - I.

Differentiate A A^{-1} = I:  dA A^{-1} + A d(A^{-1}) = 0, so d(A^{-1}) = -A^{-1} dA A^{-1}, and dA = dS:

    dR = -2 A^{-1} dS A^{-1}.

For a loss L with upstream gradient G = dL/dR, dL = <G, dR> = tr(G^T dR) = -2 tr(G^T A^{-1} dS A^{-1})
= -2 tr(A^{-1} G^T A^{-1} dS) (trace is cyclic) = <-2 (A^{-1} G^T A^{-1})^T, dS>, so

    dL/dS = -2 A^{-T} G A^{-T}.

No inverse is needed in the backward: from R = 2 A^{-1} - I, A^{-1} = (R + I) / 2, hence

    dL/dS = -1/2 (R + I)^T G (R + I)^T.

The forward solves X (I + S) = I - S as PEFT does (torch.linalg.solve(I + S, I - S, left=False)).
"""
from .. import backend
from ..autograd import Function


class Cayley(Function):
    name = "cayley"

    @staticmethod
    def forward(ctx, S):
        xp = backend.xp_of(S)
        eye = xp.eye(S.shape[-1], dtype=S.dtype)
        # X A = B  <=>  A^T X^T = B^T: a right solve as a left one on the transposes
        R = xp.linalg.solve((eye + S).swapaxes(-1, -2), (eye - S).swapaxes(-1, -2)).swapaxes(-1, -2)
        R = xp.ascontiguousarray(R)
        ctx.save_for_backward(R)
        return R

    @staticmethod
    def backward(ctx, g):
        # dS = -1/2 (R + I)^T G (R + I)^T   (see the module docstring)
        (R,) = ctx.saved_tensors
        xp = backend.xp_of(R)
        inv_t = (R + xp.eye(R.shape[-1], dtype=R.dtype)).swapaxes(-1, -2)  # 2 A^{-T}
        return backend.matmul(backend.matmul(inv_t, g), inv_t) * g.dtype.type(-0.5)


def cayley(S):
    """(I - S)(I + S)^{-1} over the last two dims of S [..., b, b]; orthogonal when S is skew-symmetric."""
    if S.ndim < 2 or S.shape[-1] != S.shape[-2]:
        raise ValueError(f"cayley expects square matrices [..., b, b], got shape {tuple(S.shape)}.")
    return Cayley.apply(S)
