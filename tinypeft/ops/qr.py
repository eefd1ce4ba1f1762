"""The orthonormal factor of a QR decomposition: torch.linalg.qr(A).Q (reduced), for DEFT's orthogonal projector.

    A = Q R,   A [m, n] (m >= n),  Q [m, n] with Q^T Q = I,  R [n, n] upper triangular

The forward is LAPACK's Householder QR (numpy.linalg.qr, the routine torch calls), so the signs of Q's columns
(R's diagonal may be negative) are torch's. Only Q is returned; R is kept for the backward.

Derivation of the backward (Q's gradient G = dL/dQ given, R unused downstream). Differentiate A = QR:

    dA = dQ R + Q dR,   so   X := Q^T dA R^{-1} = Q^T dQ + dR R^{-1}.

dR R^{-1} is upper triangular, and C := Q^T dQ is skew-symmetric (differentiate Q^T Q = I), so C is fixed by X's
strict lower triangle: C = L - L^T with L = tril(X, -1). Then dQ = dA R^{-1} - Q dR R^{-1} = dA R^{-1} - Q (X - C)
= (I - Q Q^T) dA R^{-1} + Q C. With B = Q^T G:

    dL = <G, dQ> = <(I - Q Q^T) G R^{-T}, dA> + <B, L - L^T>
       = <(I - Q Q^T) G R^{-T}, dA> + <tril(B - B^T, -1), Q^T dA R^{-1}>,

hence
    dL/dA = (G + Q (tril(B - B^T, -1) - B)) R^{-T}.

R^{-T} is applied as a triangular solve: Y R^{-T} = (R^{-1} Y^T)^T.
"""
from .. import backend
from ..autograd import Function


class QR(Function):
    name = "qr_q"

    @staticmethod
    def forward(ctx, A):
        xp = backend.xp_of(A)
        Q, R = (xp.ascontiguousarray(f) for f in xp.linalg.qr(A))  # reduced: Q [m, n], R [n, n]
        ctx.save_for_backward(Q, R)
        return Q

    @staticmethod
    def backward(ctx, g):
        # dA = (G + Q (tril(B - B^T, -1) - B)) R^{-T},  B = Q^T G   (see the module docstring)
        Q, R = ctx.saved_tensors
        B = backend.matmul(Q.T, g)
        Y = g + backend.matmul(Q, backend.xp_of(Q).tril(B - B.T, -1) - B)
        return backend.xp_of(Q).linalg.solve(R, Y.T).T.copy()  # Y R^{-T}: solve R X^T = Y^T


def qr_q(A):
    """torch.linalg.qr(A).Q for one matrix A [m, n] with m >= n (full column rank)."""
    if A.ndim != 2 or A.shape[0] < A.shape[1]:
        raise ValueError(f"qr_q expects one matrix [m, n] with m >= n, got shape {tuple(A.shape)}.")
    return QR.apply(A)
