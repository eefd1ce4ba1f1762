"""Checks for tutorials/15_training_stack.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _central_difference, _close, _exercise


def _smoothed_loss(z, y, eps):
    """mean over rows of -sum_c q_c log p_c, q = (1 - eps) onehot(y) + eps / C, in plain NumPy."""
    N, C = z.shape
    shifted = z - z.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    q = np.full((N, C), eps / C)
    q[np.arange(N), y] += 1 - eps
    return float(-(q * logp).sum() / N)


@_exercise
def check_label_smoothing_grad(label_smoothing_grad):
    """dL/dz of the mean label-smoothed cross-entropy, against central differences and tinypeft's op."""
    import tinypeft as tp
    import tinypeft.functional as F

    rng = np.random.default_rng(15)
    for N, C, eps in [(4, 5, 0.1), (3, 9, 0.3), (6, 2, 0.0), (2, 7, 1.0)]:
        z = rng.standard_normal((N, C)) * 3
        y = rng.integers(0, C, N)
        got = label_smoothing_grad(z.copy(), y.copy(), eps)
        assert got is not None, "label_smoothing_grad returned None; return the gradient, shape [N, C]"
        what = f"N={N}, C={C}, eps={eps}"
        _close(got, _central_difference(lambda z_: _smoothed_loss(z_, y, eps), z), f"{what}: dL/dz (central differences)",
               rtol=1e-5, atol=1e-8)
        tz = tp.tensor(z, requires_grad=True)
        F.cross_entropy(tz, y, label_smoothing=eps).backward()
        _close(got, tz.grad.numpy(), f"{what}: dL/dz (tinypeft's cross_entropy with label_smoothing)", rtol=1e-8, atol=1e-10)


@_exercise
def check_cosine_lr(cosine_lr):
    """cosine_lr(step, lr, warmup, total) against get_cosine_schedule_with_warmup, step by step."""
    import tinypeft as tp
    from tinypeft.optim import AdamW
    from tinypeft.optim.lr_scheduler import get_cosine_schedule_with_warmup

    for lr, warmup, total in [(1e-3, 10, 100), (0.5, 0, 20), (2e-4, 7, 30), (1.0, 3, 4)]:
        opt = AdamW([tp.tensor(np.zeros(1), requires_grad=True)], lr=lr)
        sched = get_cosine_schedule_with_warmup(opt, warmup, total)
        for step in range(total + 2):  # two steps past the end: the rate stays 0
            want = opt.param_groups[0]["lr"]
            got = cosine_lr(step, lr, warmup, total)
            assert got is not None, "cosine_lr returned None; return a number"
            assert abs(float(got) - want) <= 1e-12 + 1e-9 * abs(want), (
                f"lr={lr}, warmup={warmup}, total={total}: step {step} gives {float(got):.6g}, expected {want:.6g}")
            sched.step()


@_exercise
def check_bpe_encode(bpe_encode, tokenizer):
    """bpe_encode(word, merges) against the tokenizer's BPE model on a few hundred pre-tokenized words."""
    import json

    from tinypeft.examples.tiny_corpus import generate_documents

    backend = tokenizer.backend_tokenizer
    merges = [tuple(m) for m in json.loads(backend.to_str())["model"]["merges"]]
    text = " ".join(generate_documents(30, seed=15)) + " Strawberries, unthinkable! xylophone 12345 aaaa"
    words = sorted({w for w, _ in backend.pre_tokenizer.pre_tokenize_str(text)})
    for word in words:
        want = [t.value for t in backend.model.tokenize(word)]
        got = bpe_encode(word, [tuple(m) for m in merges])
        assert got is not None, "bpe_encode returned None; return the list of symbols"
        got = list(got)
        assert "".join(got) == word, f"{word!r}: the symbols {got} do not spell the word"
        assert got == want, f"{word!r}: {got}, the tokenizer gives {want}"
