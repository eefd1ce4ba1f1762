"""The real part of the 2-D inverse DFT of a sparse spectrum: FourierFT's weight update, one Function.

    D [M, N] = 0 except D[rows[k], cols[k]] = c[k]          (k < n, the positions distinct)
    y = Re(ifft2(D))[p, q] = 1/(MN) sum_k c[k] cos(2 pi (rows[k] p / M + cols[k] q / N))

y is linear in c, y = sum_k c[k] B_k with B_k[p, q] = cos(2 pi (rows[k] p / M + cols[k] q / N)) / (MN), so for an
upstream gradient G [M, N]:

    dL/dc[k] = sum_{p,q} G[p, q] B_k[p, q] = Re( sum_{p,q} G[p, q] e^{-2 pi i (rows[k] p / M + cols[k] q / N)} ) / (MN)
             = Re(fft2(G))[rows[k], cols[k]] / (MN)

(the forward DFT's kernel e^{-i t} has real part cos t), so the backward is one forward FFT read at the n positions.
"""
from .. import backend
from ..autograd import Function


class SparseIfft2Real(Function):
    name = "sparse_ifft2_real"

    @staticmethod
    def forward(ctx, values, *, rows, cols, shape):
        xp = backend.xp_of(values)
        dense = xp.zeros(shape, dtype=values.dtype)
        dense[rows, cols] = values
        ctx.geom = (rows, cols, shape)
        return xp.ascontiguousarray(xp.fft.ifft2(dense).real.astype(values.dtype))

    @staticmethod
    def backward(ctx, g):
        # dc[k] = Re(fft2(G))[rows[k], cols[k]] / (M N)
        rows, cols, (M, N) = ctx.geom
        xp = backend.xp_of(g)
        return (xp.fft.fft2(g).real[rows, cols] / (M * N)).astype(g.dtype)


def sparse_ifft2_real(values, rows, cols, shape):
    """Re(ifft2(D)) for D of `shape` zero except D[rows, cols] = values ([n] each; positions must be distinct)."""
    import numpy as np

    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if values.ndim != 1 or rows.shape != values.shape or cols.shape != values.shape:
        raise ValueError(f"sparse_ifft2_real: values, rows and cols must be 1-D of one length, got "
                         f"{tuple(values.shape)}, {rows.shape}, {cols.shape}.")
    if len(set(zip(rows.tolist(), cols.tolist()))) != len(rows):
        raise ValueError("sparse_ifft2_real: the spectrum positions (rows, cols) must be distinct.")
    return SparseIfft2Real.apply(values, rows=rows, cols=cols, shape=tuple(shape))
