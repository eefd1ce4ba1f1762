"""Every registered op's backward, proven against central finite differences over random shapes and values.

SPECS maps each op name in autograd.REGISTRY to a hypothesis strategy that draws (fn, inputs); the last
test fails when an op is registered without a spec, so no op can ship unproven. The building blocks (shapes,
broadcastable pairs, well-conditioned arrays, unary/binary, the LoRA/DoRA flag combinations) are the public
ones in tinypeft.testing (tinypeft/strategies.py), which users prove their own ops with.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinypeft as tp
from tinypeft.autograd import REGISTRY
from tinypeft.testing import (GRADCHECK_SETTINGS, LORA_FLAGS, arrays, binary, broadcast_pair, dims, gradcheck, leaf,
                              lora_linear_inputs, shapes_nd, unary)


@st.composite
def _matmul(draw):
    m, k, n = draw(dims), draw(dims), draw(dims)
    batch_a = tuple(draw(st.lists(st.sampled_from([1, 2]), max_size=2)))
    batch_b = tuple(draw(st.lists(st.sampled_from([1, 2]), max_size=2)))
    sa = batch_a + (m, k) if draw(st.integers(0, 4)) else (k,)
    sb = batch_b + (k, n) if draw(st.integers(0, 4)) else (k,)
    if len(sa) >= 2 and len(sb) >= 2:
        # make the batch dims broadcastable
        nb = min(len(sa), len(sb)) - 2
        sb = tuple(1 if i < nb and sa[len(sa) - len(sb) + i] != sb[i] else sb[i] for i in range(len(sb) - 2)) + sb[-2:]
    return tp.matmul, [leaf(draw(arrays(sa))), leaf(draw(arrays(sb)))]


@st.composite
def _reduce(draw, fn):
    shape = draw(shapes_nd)
    x = leaf(draw(arrays(shape)))
    dim = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                         st.sets(st.integers(0, len(shape) - 1), min_size=1).map(tuple)))
    keepdim = draw(st.booleans())
    return (lambda t: fn(t, dim, keepdim)), [x]


@st.composite
def _permute(draw):
    shape = draw(shapes_nd)
    perm = draw(st.permutations(range(len(shape))))
    return (lambda t: t.permute(*perm)), [leaf(draw(arrays(shape)))]


@st.composite
def _reshape(draw):
    shape = draw(shapes_nd)
    return (lambda t: t.reshape(-1, 1)), [leaf(draw(arrays(shape)))]


@st.composite
def _expand(draw):
    shape = draw(shapes_nd)
    target = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    return (lambda t: t.expand(2, *target)), [leaf(draw(arrays(shape)))]


@st.composite
def _getitem(draw):
    shape = draw(shapes_nd)
    kind = draw(st.sampled_from(["slice", "int", "fancy", "bool"]))
    if kind == "slice":
        index = (slice(None, None, 2),) + (Ellipsis,)
    elif kind == "int":
        index = draw(st.integers(0, shape[0] - 1))
    elif kind == "fancy":  # repeated indices: the scatter must add
        index = np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5)))
    else:
        seed = draw(st.integers(0, 1000))
        index = np.random.default_rng(seed).random(shape) > 0.5
    return (lambda t: t[index]), [leaf(draw(arrays(shape)))]


@st.composite
def _gather(draw):
    shape = draw(shapes_nd)
    dim = draw(st.integers(0, len(shape) - 1))
    seed = draw(st.integers(0, 1000))
    idx_shape = tuple(draw(st.integers(1, n)) if i != dim else draw(st.integers(1, 4)) for i, n in enumerate(shape))
    index = np.random.default_rng(seed).integers(0, shape[dim], size=idx_shape)
    return (lambda t: tp.gather(t, dim, index)), [leaf(draw(arrays(shape)))]


@st.composite
def _embedding(draw):
    num, dim = draw(st.integers(1, 6)), draw(dims)
    seed = draw(st.integers(0, 1000))
    ids = np.random.default_rng(seed).integers(0, num, size=draw(shapes_nd))
    return (lambda w: tp.functional.embedding(ids, w)), [leaf(draw(arrays((num, dim))))]


def test_embedding_padding_row_gets_no_gradient():
    # torch's convention, not a derivative: finite differences would disagree, so it is tested on its own
    w = leaf(np.ones((4, 3)))
    tp.functional.embedding(np.array([[0, 2, 2]]), w, padding_idx=2).sum().backward()
    assert w.grad.numpy()[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0]


@st.composite
def _cat(draw, fn):
    shape = draw(shapes_nd)
    dim = draw(st.integers(0, len(shape) - 1))
    n = draw(st.integers(1, 3))
    xs = []
    for _ in range(n):
        s = list(shape)
        if fn is tp.cat:
            s[dim] = draw(dims)
        xs.append(leaf(draw(arrays(tuple(s)))))
    return (lambda *ts: fn(list(ts), dim=dim)), xs


@st.composite
def _where(draw):
    sa, sb = draw(broadcast_pair())
    seed = draw(st.integers(0, 1000))
    cond = np.random.default_rng(seed).random(np.broadcast_shapes(sa, sb)) > 0.5
    return (lambda a, b: tp.where(cond, a, b)), [leaf(draw(arrays(sa))), leaf(draw(arrays(sb)))]


@st.composite
def _masked_fill(draw):
    shape = draw(shapes_nd)
    seed = draw(st.integers(0, 1000))
    mask = np.random.default_rng(seed).random(shape[-1:]) > 0.5  # broadcasts like an attention mask
    return (lambda t: t.masked_fill(mask, -3.0)), [leaf(draw(arrays(shape)))]


@st.composite
def _max(draw):
    # distinct values so the max is unique and finite differences see a smooth function
    shape = draw(shapes_nd)
    n = int(np.prod(shape))
    seed = draw(st.integers(0, 1000))
    x = np.random.default_rng(seed).permutation(n).reshape(shape) * 0.5
    dim = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                         st.sets(st.integers(0, len(shape) - 1), min_size=1).map(tuple)))  # tuple dims too
    keepdim = draw(st.booleans())
    return (lambda t: tp.amax(t, dim, keepdim)), [leaf(x)]


# -- composite ops: one Function each, with a closed-form backward ------------------------------------------
F = tp.functional


def maybe_leaf(draw, shape):
    """An optional parameter: None, a constant array, or a leaf that requires grad."""
    kind = draw(st.sampled_from(["none", "const", "leaf"]))
    if kind == "none":
        return None
    a = draw(arrays(shape, 0.5, 1.5))
    return leaf(a) if kind == "leaf" else tp.tensor(a)


def _with_optional(fn, x, params):
    """(fn over the leaves, leaves): parameters that are None or constants are closed over, not perturbed."""
    leaves = [x] + [p for p in params if p is not None and p.requires_grad]

    def call(*ts):
        it = iter(ts[1:])
        return fn(ts[0], *[next(it) if p is not None and p.requires_grad else p for p in params])

    return call, leaves


@st.composite
def _softmax(draw, fn):
    shape = draw(shapes_nd)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return (lambda t: fn(t, dim)), [leaf(draw(arrays(shape, -3, 3)))]


@st.composite
def _layer_norm(draw, fn):
    lead = tuple(draw(st.lists(dims, max_size=2)))
    norm = tuple(draw(st.lists(st.integers(2, 4), min_size=1, max_size=2)))  # >= 2 values: var > 0
    shape = lead + norm
    x = leaf(draw(arrays(shape)))
    w = maybe_leaf(draw, norm)
    if fn is F.layer_norm:
        b = maybe_leaf(draw, norm)
        return _with_optional(lambda t, w, b: fn(t, norm, w, b), x, [w, b])
    eps = draw(st.sampled_from([None, 1e-5]))
    return _with_optional(lambda t, w: fn(t, norm, w, eps=eps), x, [w])


@st.composite
def _dropout(draw):
    shape = draw(shapes_nd)
    p = draw(st.sampled_from([0.1, 0.5, 0.9]))
    seed = draw(st.integers(0, 1000))

    def fn(t):
        tp.manual_seed(seed)  # the same mask on every evaluation, so finite differences see one function
        return F.dropout(t, p)

    return fn, [leaf(draw(arrays(shape)))]


@st.composite
def _cross_entropy(draw):
    n, c = draw(dims), draw(st.integers(1, 5))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    unbatched = draw(st.integers(0, 5)) == 0
    shape, tshape = ((c,), ()) if unbatched else ((n, c) + extra, (n,) + extra)
    seed = draw(st.integers(0, 1000))
    rng = np.random.default_rng(seed)
    target = rng.integers(0, c, size=tshape)
    if not unbatched and draw(st.booleans()):
        target.reshape(-1)[0] = -100  # one ignored target; with size 1 all are ignored (mean: nan value, zero grad)
    weight = tp.tensor(rng.uniform(0.5, 2.0, c)) if draw(st.booleans()) else None
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    if reduction == "mean" and (target == -100).all():
        reduction = "sum"  # a nan loss has no finite differences
    ls = draw(st.sampled_from([0.0, 0.2]))
    fn = lambda t: F.cross_entropy(t, target, weight=weight, reduction=reduction, label_smoothing=ls)
    return fn, [leaf(draw(arrays(shape, -3, 3)))]


@st.composite
def _sdpa(draw):
    """Random batch/head layout, L != S, Ev != E, and one of: no mask, bool, additive (maybe learnable), causal; maybe GQA."""
    L, S, E, Ev = draw(dims), draw(dims), draw(dims), draw(dims)
    gqa = draw(st.booleans())
    hk = draw(st.integers(1, 2))
    hq = hk * draw(st.integers(1, 3)) if gqa else hk
    batch = draw(st.sampled_from([(), (2,)]))
    lead_q = batch + (hq,) if gqa or draw(st.booleans()) else batch
    lead_kv = batch + (hk,) if gqa else lead_q
    lead_kv = tuple(1 if draw(st.integers(0, 3)) == 0 else d for d in lead_kv)  # broadcast batch dims
    seed = draw(st.integers(0, 1000))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["none", "bool", "float", "float_leaf", "causal"]))
    mshape = draw(st.sampled_from([(L, S), lead_q[-1:] + (L, S) if lead_q else (L, S)]))
    mask = None
    if kind == "bool":
        mask = rng.random(mshape) > 0.3  # some rows may be fully masked: output 0, gradient 0
    elif kind in ("float", "float_leaf"):
        mask = rng.standard_normal(mshape)
        mask = leaf(mask) if kind == "float_leaf" else tp.tensor(mask)
    scale = draw(st.sampled_from([None, 0.5]))
    q, k, v = (leaf(draw(arrays(lead_q + (L, E)))), leaf(draw(arrays(lead_kv + (S, E)))),
               leaf(draw(arrays(lead_kv + (S, Ev)))))
    dropout_p = draw(st.sampled_from([0.0, 0.0, 0.3]))

    def fn(q, k, v, *m):
        tp.manual_seed(seed)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m[0] if m else mask, dropout_p=dropout_p,
                                              is_causal=kind == "causal", scale=scale, enable_gqa=gqa)

    return fn, [q, k, v] + ([mask] if kind == "float_leaf" else [])


@st.composite
def _linear(draw):
    n_in, n_out = draw(dims), draw(dims)
    lead = tuple(draw(st.lists(dims, max_size=2)))
    fifo = draw(st.booleans())  # GPT-2's Conv1D layout: weight [in, out]
    wshape = (n_in, n_out) if fifo else (n_out, n_in)
    x = leaf(draw(arrays(lead + (n_in,))))
    w = leaf(draw(arrays(wshape))) if draw(st.integers(0, 3)) else tp.tensor(draw(arrays(wshape)))
    b = maybe_leaf(draw, (n_out,))
    op = tp.ops.linear.conv1d_linear if fifo else F.linear
    return _with_optional(lambda t, w, b: op(t, w, b), x, [w, b])


@st.composite
def _mse_loss(draw):
    sa, sb = draw(broadcast_pair())
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return (lambda a, b: F.mse_loss(a, b, reduction=reduction)), [leaf(draw(arrays(sa))), leaf(draw(arrays(sb)))]


@st.composite
def _lora(draw, dora=False):
    """A LoRA/DoRA layer: frozen or trainable W, bias or none, fan_in_fan_out, dropout with a fixed mask."""
    n_in, n_out, r = draw(dims), draw(dims), draw(st.integers(1, 3))
    lead = tuple(draw(st.lists(dims, min_size=1, max_size=2)))
    fifo = draw(st.booleans())
    w_shape = (n_in, n_out) if fifo else (n_out, n_in)
    x = leaf(draw(arrays(lead + (n_in,))))
    W = leaf(draw(arrays(w_shape))) if draw(st.integers(0, 3)) == 0 else tp.tensor(draw(arrays(w_shape)))
    b = leaf(draw(arrays((n_out,)))) if draw(st.booleans()) else None
    A, B = leaf(draw(arrays((r, n_in)))), leaf(draw(arrays((n_out, r))))
    s = draw(st.sampled_from([0.5, 2.0]))
    p = draw(st.sampled_from([0.0, 0.3]))
    include_base = draw(st.booleans())  # False: the term a second active adapter adds
    seed = draw(st.integers(0, 1000))
    inputs = [t for t in (x, W, b, A, B) if t is not None and t.requires_grad]
    if dora:
        m = leaf(draw(arrays((n_out,), 0.5, 2.0)))
        # the row norm is a constant by design: computed once from the starting values, outside fn
        Wd = W.detach().numpy()
        Wd = Wd.T if fifo else Wd
        norm = tp.tensor(np.linalg.norm(Wd + s * B.detach().numpy() @ A.detach().numpy(), axis=1))
        inputs.append(m)

    def fn(*_):
        tp.manual_seed(seed)
        if dora:
            return tp.ops.lora.dora_linear(x, W, b, A, B, m, norm, s, p, training=True, fan_in_fan_out=fifo,
                                           include_base=include_base)
        return tp.ops.lora.lora_linear(x, W, b, A, B, s, p, training=True, fan_in_fan_out=fifo,
                                       include_base=include_base)

    return fn, inputs


@st.composite
def _conv(draw, n):
    """conv1d / conv2d / conv3d: random stride, padding (int, 'valid', 'same'), dilation, groups; bias None, const or leaf."""
    G = draw(st.integers(1, 2))
    C, O = G * draw(st.integers(1, 2)), G * draw(st.integers(1, 2))
    small = n == 3  # finite differences nudge every input element: keep the volume of a 3-D input small
    kernel = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    padding = draw(st.sampled_from([0, 1, "valid", "same"]))
    stride = (1,) * n if padding == "same" else tuple(draw(st.integers(1, 2)) for _ in range(n))
    spatial = tuple(d * (k - 1) + draw(st.integers(1, 2 if small else 4)) for k, d in zip(kernel, dilation))
    x = leaf(draw(arrays((draw(st.integers(1, 2)), C) + spatial)))
    w = leaf(draw(arrays((O, C // G) + kernel))) if draw(st.integers(0, 3)) else tp.tensor(draw(arrays((O, C // G) + kernel)))
    b = maybe_leaf(draw, (O,))
    op = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    s, d = (stride[0], dilation[0]) if n == 1 else (stride, dilation)
    return _with_optional(lambda t, w, b: op(t, w, b, s, padding, d, G), x, [w, b])


@st.composite
def _cayley(draw):
    """Cayley on a batch of b x b matrices of small norm (I + S well conditioned); skew or not, the op is the same."""
    b = draw(st.integers(1, 4))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    S = draw(arrays(batch + (b, b), -0.4, 0.4))
    if draw(st.booleans()):
        S = S - S.swapaxes(-1, -2)  # the skew-symmetric case OFT uses
    return F.cayley, [leaf(S)]


@st.composite
def _qr_q(draw):
    """QR's Q of a tall or square matrix with full column rank (a random matrix plus a multiple of the identity)."""
    n = draw(st.integers(1, 4))
    m = draw(st.integers(n, 6))
    A = draw(arrays((m, n), -1, 1)) + 2.5 * np.eye(m, n) * draw(st.sampled_from([1.0, -1.0]))
    return F.qr_q, [leaf(A)]


@st.composite
def _fold_unfold(draw, which):
    """unfold / fold with random kernel, dilation, padding and stride (windows overlap when stride < kernel)."""
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    padding = tuple(draw(st.integers(0, 1)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(2))
    hw = tuple(d * (k - 1) + draw(st.integers(1, 4)) for k, d in zip(kernel, dilation))
    B, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    if which == "unfold":
        x = leaf(draw(arrays((B, C) + hw)))
        return (lambda t: F.unfold(t, kernel, dilation, padding, stride)), [x]
    L = 1
    for n, k, d, p, s in zip(hw, kernel, dilation, padding, stride):
        L *= (n + 2 * p - d * (k - 1) - 1) // s + 1
    cols = leaf(draw(arrays((B, C * kernel[0] * kernel[1], L))))
    return (lambda t: F.fold(t, hw, kernel, dilation, padding, stride)), [cols]


@st.composite
def _sparse_ifft2_real(draw):
    """A few distinct spectrum positions in an M x N grid (even and odd sizes)."""
    M, N = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    n = draw(st.integers(1, M * N))
    pos = np.random.default_rng(draw(st.integers(0, 2**31 - 1))).permutation(M * N)[:n]
    values = leaf(draw(arrays((n,))))
    return (lambda v: F.sparse_ifft2_real(v, pos // N, pos % N, (M, N))), [values]


@st.composite
def _quantized_linear(draw):
    # the weight is frozen and quantized (no gradient); x and the bias are checked
    from tinypeft.quantization import Int8Params, Params4bit, quantized_linear

    n, k = draw(st.integers(1, 5)), draw(st.integers(1, 70))
    W = draw(arrays((n, k))).astype(np.float32)
    kind = draw(st.sampled_from(["nf4", "fp4", "int8"]))
    w = Int8Params(W) if kind == "int8" else Params4bit(W, quant_type=kind, compress_statistics=draw(st.booleans()))
    x = leaf(draw(arrays(draw(st.lists(dims, min_size=0, max_size=2).map(tuple)) + (k,))))
    b = maybe_leaf(draw, (n,))
    return (lambda x, b: quantized_linear(x, w, b)), [x, b]


@st.composite
def _checkpoint(draw):
    # a recomputed block: one output, or a tuple (tensor, None, tensor) joined and split inside the op
    from tinypeft.utils.checkpoint import checkpoint

    shape = draw(shapes_nd)
    multi = draw(st.booleans())

    def block(a, b):
        h = (a * b).tanh()
        return (h * a, None, h.sum()) if multi else h * a

    def fn(a, b):
        out = checkpoint(block, a, b)
        return [out[0], out[2]] if multi else out

    return fn, [leaf(draw(arrays(shape))), leaf(draw(arrays(shape)))]


@st.composite
def _lora_quantized_linear(draw):
    # QLoRA's op: x, the bias and both adapter matrices checked; the quantized weight is frozen
    from tinypeft.quantization import Params4bit
    from tinypeft.quantization.ops import lora_quantized_linear

    n, k, r = draw(st.integers(1, 5)), draw(st.integers(1, 70)), draw(st.integers(1, 3))
    w = Params4bit(draw(arrays((n, k))).astype(np.float32), quant_type=draw(st.sampled_from(["nf4", "fp4"])))
    x = leaf(draw(arrays(draw(st.lists(dims, min_size=0, max_size=2).map(tuple)) + (k,))))
    A, B = leaf(draw(arrays((r, k)))), leaf(draw(arrays((n, r))))
    b = maybe_leaf(draw, (n,))
    p = draw(st.sampled_from([0.0, 0.3]))
    seed = draw(st.integers(0, 1000))

    def fn(x, b, A, B):
        tp.manual_seed(seed)  # the same dropout mask on every call
        return lora_quantized_linear(x, w, b, A, B, 1.5, dropout_p=p, training=True)

    return fn, [x, b, A, B]


SPECS = {
    "add": binary(tp.add),
    "sub": binary(tp.sub),
    "mul": binary(tp.mul),
    "div": binary(tp.div, b_low=0.5, b_high=2.0),
    "neg": unary(tp.neg),
    "pow": binary(tp.pow, low=0.5, high=2.0),
    "matmul": _matmul(),
    "sum": _reduce(tp.sum),
    "mean": _reduce(tp.mean),
    "max": _max(),
    "exp": unary(tp.exp),
    "log": unary(tp.log, 0.1, 3.0),
    "sqrt": unary(tp.sqrt, 0.1, 3.0),
    "tanh": unary(tp.tanh),
    "sin": unary(tp.sin, -4, 4),
    "cos": unary(tp.cos, -4, 4),
    "sigmoid": unary(tp.sigmoid, -6, 6),
    # |x| >= 0.01 with both signs (alternating), so no finite difference straddles the kink at 0
    "relu": unary(lambda x: tp.relu(x * np.resize([-1.0, 1.0], x.shape)), low=0.01),
    "gelu": st.sampled_from(["none", "tanh"]).flatmap(lambda a: unary(lambda t: tp.gelu(t, approximate=a), -4, 4)),
    "silu": unary(tp.silu, -6, 6),
    "reshape": _reshape(),
    "permute": _permute(),
    "expand": _expand(),
    "getitem": _getitem(),
    "gather": _gather(),
    "embedding": _embedding(),
    "cat": _cat(tp.cat),
    "stack": _cat(tp.stack),
    "where": _where(),
    "masked_fill": _masked_fill(),
    "cast": unary(lambda t: t.to(np.float64) * 1.0),
    "to_device": unary(lambda t: t.to("cpu") * 1.0),
    "softmax": _softmax(F.softmax),
    "log_softmax": _softmax(F.log_softmax),
    "layer_norm": _layer_norm(F.layer_norm),
    "rms_norm": _layer_norm(F.rms_norm),
    "dropout": _dropout(),
    "cross_entropy": _cross_entropy(),
    "scaled_dot_product_attention": _sdpa(),
    "linear": _linear(),
    "mse_loss": _mse_loss(),
    "lora_linear": _lora(),
    "dora_linear": _lora(dora=True),
    "conv1d": _conv(1),
    "conv2d": _conv(2),
    "conv3d": _conv(3),
    "cayley": _cayley(),
    "qr_q": _qr_q(),
    "unfold": _fold_unfold("unfold"),
    "fold": _fold_unfold("fold"),
    "sparse_ifft2_real": _sparse_ifft2_real(),
    "quantized_linear": _quantized_linear(),
    "checkpoint": _checkpoint(),
    "lora_quantized_linear": _lora_quantized_linear(),
}


@pytest.mark.parametrize("name", sorted(SPECS))
@GRADCHECK_SETTINGS
@given(data=st.data())
def test_gradcheck(name, data):
    fn, inputs = data.draw(SPECS[name])
    assert gradcheck(fn, inputs)


# -- the combinations that matter, enumerated (hypothesis draws only the shapes and values) -------------------
@pytest.mark.parametrize("dora, fan_in_fan_out, w_trainable, bias, dropout", LORA_FLAGS)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_lora_and_dora_gradients_for_every_flag_combination(dora, fan_in_fan_out, w_trainable, bias, dropout, data):
    fn, inputs = data.draw(lora_linear_inputs(dora, fan_in_fan_out, w_trainable, bias, dropout))
    assert gradcheck(fn, inputs)


CAST_PAIRS = [(a, b) for a in ("float64", "float32", "float16") for b in ("float64", "float32", "float16") if a != b]


@pytest.mark.parametrize("source, target", CAST_PAIRS)
def test_cast_gradient_across_dtypes(source, target):
    """cast is the identity up to rounding, so its gradient is the cotangent cast back to the source dtype."""
    x = tp.tensor(np.random.default_rng(0).uniform(-2, 2, (3, 4)).astype(source), requires_grad=True)
    c = np.random.default_rng(1).uniform(-2, 2, (3, 4))
    y = x.to(target)
    assert y.dtype == np.dtype(target)
    (y * tp.tensor(c.astype(target))).sum().backward()
    assert x.grad.dtype == np.dtype(source)
    np.testing.assert_array_equal(x.grad.numpy(), (c.astype(target) * np.ones(1, target)).astype(source))
    if source == "float64":  # and by finite differences, with a step the target's rounding cannot swamp
        xf = leaf(x.detach().numpy())
        assert gradcheck(lambda t: t.to(target).to("float64") * 1.0, [xf], eps=1e-2,
                         atol=2e-2 if target == "float16" else 1e-4, rtol=1e-2)


def test_every_registered_op_has_a_gradcheck():
    missing = sorted(set(REGISTRY) - set(SPECS))
    assert not missing, f"ops without a gradcheck spec in tests/test_gradcheck.py: {missing}"


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(tp.autograd.Function):
        name = None  # not registered

        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 x g

    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(AssertionError, match="gradcheck failed"):
        gradcheck(lambda t: Wrong.apply(t), [x])
