"""Checks for tutorials/16_methods_from_scratch.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _central_difference, _close, _exercise


@_exercise
def check_prefix_attention_backward(prefix_attention_backward, prefix_attention):
    """(dk_prefix, dv_prefix) of sum(prefix_attention(...) * g), against central differences."""
    rng = np.random.default_rng(16)
    for T, N, d, dv in [(5, 2, 8, 8), (3, 4, 6, 5), (1, 1, 4, 3)]:
        q, k = rng.standard_normal((T, d)), rng.standard_normal((T, d))
        v = rng.standard_normal((T, dv))
        kp, vp = rng.standard_normal((N, d)), rng.standard_normal((N, dv))
        g = rng.standard_normal((T, dv))
        got = prefix_attention_backward(q.copy(), k.copy(), v.copy(), kp.copy(), vp.copy(), g.copy())
        assert got is not None and len(got) == 2, "return the tuple (dk_prefix, dv_prefix)"
        dkp, dvp = got
        what = f"T={T}, N={N}, d={d}"
        loss_vp = lambda vp_: float((prefix_attention(q, k, v, kp, vp_) * g).sum())  # noqa: E731
        loss_kp = lambda kp_: float((prefix_attention(q, k, v, kp_, vp) * g).sum())  # noqa: E731
        _close(dvp, _central_difference(loss_vp, vp), f"{what}: dv_prefix", rtol=1e-5, atol=1e-7)
        _close(dkp, _central_difference(loss_kp, kp), f"{what}: dk_prefix (mind the 1/sqrt(d) of the scores)",
               rtol=1e-5, atol=1e-7)


def _dora_y(x, W, A, B, m, s):
    V = W + s * B @ A
    return x @ (V * (m / np.linalg.norm(V, axis=1))[:, None]).T


@_exercise
def check_dora_exact_grad_B(dora_exact_grad_B):
    """dL/dB with ||W + s B A|| kept in the graph, against central differences of the full forward."""
    rng = np.random.default_rng(17)
    for N, d_in, d_out, r, s in [(6, 5, 4, 2, 1.5), (3, 7, 7, 3, 0.5)]:
        x, W = rng.standard_normal((N, d_in)), rng.standard_normal((d_out, d_in))
        A, B = rng.standard_normal((r, d_in)), rng.standard_normal((d_out, r))
        m = np.linalg.norm(W + s * B @ A, axis=1) * rng.uniform(0.5, 1.5, d_out)
        g = rng.standard_normal((N, d_out))
        got = dora_exact_grad_B(x.copy(), W.copy(), A.copy(), B.copy(), m.copy(), s, g.copy())
        assert got is not None, "dora_exact_grad_B returned None; return dB"
        want = _central_difference(lambda B_: float((_dora_y(x, W, A, B_, m, s) * g).sum()), B)
        V = W + s * B @ A
        detached = s * ((g.T @ x) * (m / np.linalg.norm(V, axis=1))[:, None]) @ A.T
        got = np.asarray(got, dtype=np.float64)
        if got.shape == want.shape and np.allclose(got, detached, rtol=1e-6, atol=1e-8):
            raise AssertionError("this is the detached gradient (||V|| treated as a constant); the exercise asks for "
                                 "the exact one, with the projection that removes the component along each row")
        _close(got, want, f"N={N}, {d_in}->{d_out}, r={r}: dB", rtol=1e-5, atol=1e-7)


@_exercise
def check_prefix_projection_backward(prefix_projection_backward):
    """(dE, dW1, db1, dW2, db2) of sum(P * G), P = tanh(E W1^T + b1) W2^T + b2: central differences, tinypeft."""
    import tinypeft as tp
    from tinypeft import PrefixTuningConfig
    from tinypeft.peft.tuners.prefix_tuning.model import PrefixEncoder

    rng = np.random.default_rng(18)
    N, d, h, L = 3, 4, 5, 2
    E, W1, b1 = rng.standard_normal((N, d)), rng.standard_normal((h, d)), rng.standard_normal(h)
    W2, b2 = rng.standard_normal((2 * L * d, h)), rng.standard_normal(2 * L * d)
    G = rng.standard_normal((N, 2 * L * d))
    arrays = [E, W1, b1, W2, b2]
    got = prefix_projection_backward(*(a.copy() for a in arrays), G.copy())
    assert got is not None and len(got) == 5, "return the tuple (dE, dW1, db1, dW2, db2)"

    def loss(i, value):
        args = list(arrays)
        args[i] = value
        E_, W1_, b1_, W2_, b2_ = args
        return float(((np.tanh(E_ @ W1_.T + b1_) @ W2_.T + b2_) * G).sum())

    names = ["dE", "dW1", "db1", "dW2", "db2"]
    for i, (name, grad) in enumerate(zip(names, got)):
        _close(grad, _central_difference(lambda a: loss(i, a), arrays[i]), f"{name} (central differences)",
               rtol=1e-5, atol=1e-7)
    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=N, prefix_projection=True,
                                encoder_hidden_size=h, token_dim=d, num_layers=L, num_attention_heads=1)
    encoder = PrefixEncoder(config).double()
    params = [encoder.embedding.weight, encoder.transform[0].weight, encoder.transform[0].bias,
              encoder.transform[2].weight, encoder.transform[2].bias]
    for p, a in zip(params, arrays):
        p.data[...] = a
    (encoder(np.arange(N)[None])[0] * tp.tensor(G)).sum().backward()
    for name, p, grad in zip(names, params, got):
        _close(grad, p.grad.numpy(), f"{name} (tinypeft's PrefixEncoder)", rtol=1e-8, atol=1e-10)
