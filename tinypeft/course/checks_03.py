"""Checks for tutorials/03_matmul.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _array, _close, _exercise


@_exercise
def check_pack_a(pack_a):
    """pack_a(a, mr) -> flat panels, out[p*k*mr + l*mr + i] = A[p*mr + i, l], zeros past the last row."""
    rng = np.random.default_rng(3)
    for m, k, mr in [(12, 5, 6), (13, 7, 6), (1, 3, 4), (9, 1, 4)]:
        a = rng.standard_normal((m, k))
        got = pack_a(a, mr)
        assert got is not None, "pack_a returned None; return the packed array"
        got = _array(got, f"pack_a({m}x{k}, mr={mr})")
        panels = -(-m // mr)
        assert got.ndim == 1, f"pack_a({m}x{k}, mr={mr}): return a flat 1-D array, got shape {got.shape}"
        want = np.zeros(panels * k * mr)
        for p in range(panels):
            for l in range(k):
                for i in range(mr):
                    if p * mr + i < m:
                        want[p * k * mr + l * mr + i] = a[p * mr + i, l]
        _close(got, want, f"pack_a({m}x{k}, mr={mr})", rtol=0, atol=0)


@_exercise
def check_micro_kernel(micro_kernel):
    """micro_kernel(a_packed, b_packed, kc, mr, nr) -> the [mr, nr] tile A_panel @ B_panel."""
    rng = np.random.default_rng(4)
    for kc, mr, nr in [(7, 6, 8), (1, 4, 4), (33, 6, 16)]:
        a = rng.standard_normal((mr, kc))  # the panel of A: mr rows
        b = rng.standard_normal((kc, nr))  # the panel of B: nr columns
        a_packed = a.T.reshape(-1).copy()  # [l*mr + i] = a[i, l]
        b_packed = b.reshape(-1).copy()  # [l*nr + j] = b[l, j]
        got = micro_kernel(a_packed, b_packed, kc, mr, nr)
        assert got is not None, "micro_kernel returned None; return the tile"
        _close(got, a @ b, f"micro_kernel(kc={kc}, mr={mr}, nr={nr})", rtol=1e-12, atol=1e-12)


@_exercise
def check_tiled_matmul(tiled_matmul):
    """tiled_matmul(a, b, tile) -> a @ b, for sizes that are and are not multiples of the tile, multiplying
    no block bigger than tile x tile at a time."""
    rng = np.random.default_rng(5)
    for (m, k, n), tile in [((8, 8, 8), 4), ((13, 9, 11), 4), ((5, 17, 3), 8), ((4, 4, 4), 16)]:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        seen = []
        got = tiled_matmul(_Watched.of(a, seen), _Watched.of(b, seen), tile)
        assert got is not None, "tiled_matmul returned None; return C"
        _close(got.view(np.ndarray) if isinstance(got, _Watched) else got, a @ b, f"tiled_matmul({m}x{k} @ {k}x{n}, tile={tile})", rtol=1e-10,
               atol=1e-10)
        big = [s for s in seen if any(d > tile for d in s)]
        assert not big, (f"tiled_matmul({m}x{k} @ {k}x{n}, tile={tile}) multiplied a block of shape {big[0]}: "
                         f"multiply tile x tile blocks (a[i:i+tile, p:p+tile] @ b[p:p+tile, j:j+tile]) and add them up")


class _Watched(np.ndarray):
    """An array that notes the operand shapes of every matrix product it takes part in (matmul, dot, einsum)."""

    @classmethod
    def of(cls, a, seen):
        w = np.array(a).view(cls)
        w._seen = seen
        return w

    def __array_finalize__(self, obj):
        self._seen = getattr(obj, "_seen", None)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, _Watched) else x for x in inputs]
        if ufunc is np.matmul and self._seen is not None:
            self._seen.extend(np.shape(x) for x in plain)
        out = getattr(ufunc, method)(*plain, **kwargs)
        return out.view(_Watched) if isinstance(out, np.ndarray) and out.ndim else out

    def __array_function__(self, func, types, args, kwargs):
        if func in (np.dot, np.matmul, np.einsum, np.tensordot, np.inner) and self._seen is not None:
            self._seen.extend(np.shape(x) for x in args if isinstance(x, np.ndarray))
        return super().__array_function__(func, types, args, kwargs)


