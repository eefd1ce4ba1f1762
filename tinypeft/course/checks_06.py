"""Checks for tutorials/06_lora_from_scratch.md's exercises (see checking.py for how checks behave)."""
import warnings

import numpy as np

from .checking import _array, _central_difference, _close, _exercise


@_exercise
def check_lora_backward_dropout(lora_backward_dropout):
    """(dx, dA, dB) of y = x W^T + b + s (d(x) A^T) B^T, d(x) = x * keep / (1 - p), by central differences."""
    rng = np.random.default_rng(6)
    N, d_in, d_out, r, s, p = 5, 7, 4, 3, 2.5, 0.25
    x, W = rng.standard_normal((N, d_in)), rng.standard_normal((d_out, d_in))
    b, A, B = rng.standard_normal(d_out), rng.standard_normal((r, d_in)), rng.standard_normal((d_out, r))
    keep = (rng.random((N, d_in)) > p).astype(np.float64)
    g = rng.standard_normal((N, d_out))

    def loss(x, A, B):  # sum(y * g): its gradient with respect to y is g
        xd = x * keep / (1 - p)
        return float(((x @ W.T + b + s * (xd @ A.T) @ B.T) * g).sum())

    got = lora_backward_dropout(g, x.copy(), W.copy(), A.copy(), B.copy(), s, keep, p)
    assert got is not None and len(got) == 3, "return the tuple (dx, dA, dB)"
    dx, dA, dB = got
    _close(dB, _central_difference(lambda B_: loss(x, A, B_), B), "dB", rtol=1e-5, atol=1e-7)
    _close(dA, _central_difference(lambda A_: loss(x, A_, B), A), "dA (the dropped-out input feeds A)", rtol=1e-5, atol=1e-7)
    _close(dx, _central_difference(lambda x_: loss(x_, A, B), x),
           "dx (the LoRA share passes back through the same mask and 1/(1-p); the frozen share does not)",
           rtol=1e-5, atol=1e-7)


@_exercise
def check_merge_weight(merge_weight):
    """merge_weight(W, A, B, s, fan_in_fan_out) in W's layout gives the unmerged LoRA output; W is untouched."""
    rng = np.random.default_rng(7)
    # a square layer first: there a missing transpose still has the right shape and only the numbers are wrong
    for d_in, d_out in [(6, 6), (5, 8)]:
        r, s = 2, 0.75
        x = rng.standard_normal((4, d_in))
        A, B = rng.standard_normal((r, d_in)), rng.standard_normal((d_out, r))
        W_linear = rng.standard_normal((d_out, d_in))  # nn.Linear: [out, in], y = x W^T
        want = x @ W_linear.T + s * (x @ A.T) @ B.T
        for fifo in (False, True):
            W = W_linear.T.copy() if fifo else W_linear.copy()  # Conv1D: [in, out], y = x W
            kind = "Conv1D (fan_in_fan_out=True)" if fifo else "nn.Linear"
            original = W.copy()
            merged = merge_weight(W, A, B, s, fan_in_fan_out=fifo)
            assert merged is not None, "merge_weight returned None; return the merged weight"
            merged = _array(merged, f"{kind}: merge_weight")
            assert np.array_equal(W, original), f"{kind}: W was changed in place; return a new array"
            assert merged.shape == W.shape, f"{kind}: merged weight has shape {merged.shape}, W has {W.shape}"
            got = x @ merged if fifo else x @ merged.T
            _close(got, want, f"{kind} {d_in}->{d_out}: output of the merged layer", rtol=1e-10, atol=1e-10)


@_exercise
def check_lora_param_count(lora_param_count):
    """lora_param_count(GPT2Config, r, targets) against get_peft_model's count on models built without memory."""
    import tinypeft as tp
    from tinypeft import LoraConfig, TaskType, get_peft_model, nn
    from tinypeft.models.gpt2 import GPT2Config

    configs = [
        GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, n_positions=32),
        GPT2Config(n_embd=48, n_layer=3, n_head=4, n_inner=80, vocab_size=50, n_positions=16),
        GPT2Config(),  # GPT-2 small
    ]
    targets_list = [("c_attn",), ("c_proj",), ("c_fc",), ("c_attn", "c_proj", "c_fc")]
    for config in configs:
        for targets in targets_list:
            for r in (1, 8):
                with nn.init_empty_weights():
                    model = tp.AutoModelForCausalLM.from_config(config)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=r, target_modules=list(targets))
                    want = get_peft_model(model, lora).get_nb_trainable_parameters()[0]
                got = lora_param_count(config, r, targets)
                what = f"n_embd={config.n_embd}, n_layer={config.n_layer}, n_inner={config.n_inner}, r={r}, {targets}"
                assert got is not None, "lora_param_count returned None; return a number"
                assert int(got) == want, f"{what}: {got}, expected {want}"
