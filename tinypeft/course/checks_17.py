"""Checks for tutorials/17_memory.md's exercises (see checking.py for how checks behave)."""
import warnings

import numpy as np

from .checking import _exercise


def _storage(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _saved_bytes(loss, parameters=()):
    """What the tutorial's saved_bytes measures: the graph's saved arrays, once each, parameters left out."""
    from tinypeft.autograd import _topological_order

    params = {id(_storage(p.data)) for p in parameters}
    seen = {}
    for t in _topological_order(loss):
        if t.grad_fn is not None:
            for a in _arrays_in(t.grad_fn.saved_tensors):
                if id(_storage(a)) not in params:
                    seen[id(_storage(a))] = _storage(a).nbytes
    return sum(seen.values())


def _loss_bytes(B, T, V):
    import tinypeft as tp
    import tinypeft.functional as F

    logits = tp.tensor(np.zeros((B * T, V), np.float32), requires_grad=True)
    return _saved_bytes(F.cross_entropy(logits, np.zeros(B * T, np.int64)))


def _arrays_in(saved):
    for x in saved:
        if isinstance(x, np.ndarray):
            yield x
        elif isinstance(x, (tuple, list)):
            yield from _arrays_in(x)


@_exercise
def check_checkpointed_activation_bytes(checkpointed_activation_bytes):
    """The prediction against the bytes a real forward's graph keeps, with none, all and some blocks checkpointed."""
    import tinypeft as tp
    from tinypeft.models.gpt2 import GPT2Config

    rng = np.random.default_rng(17)
    cases = [((64, 2, 4, 500), (2, 16), set()), ((64, 2, 4, 500), (2, 16), {0, 1}), ((48, 4, 4, 300), (3, 8), {0, 2}),
             ((48, 4, 2, 300), (1, 24), {3}), ((32, 3, 4, 200), (4, 8), {0, 1, 2})]
    for (d, L, H, V), (B, T), ckpt in cases:
        config = GPT2Config(n_embd=d, n_layer=L, n_head=H, vocab_size=V, n_positions=64,
                            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        tp.manual_seed(0)
        model = tp.AutoModelForCausalLM.from_config(config).train()
        if ckpt:
            model.gradient_checkpointing_enable()
            for i, block in enumerate(model.transformer.h):
                block.gradient_checkpointing = i in ckpt
        ids = rng.integers(0, V, (B, T))
        want = _saved_bytes(model(input_ids=ids, labels=ids).loss, model.parameters())
        got = checkpointed_activation_bytes(config, B, T, set(ckpt), _loss_bytes(B, T, V))
        assert got is not None, "checkpointed_activation_bytes returned None; return a number of bytes"
        assert int(got) == want, f"d={d}, L={L}, H={H}, V={V}, B={B}, T={T}, checkpointed {sorted(ckpt)}: {int(got):,} bytes, the graph keeps {want:,}"


@_exercise
def check_training_state_bytes(training_state_bytes):
    """The prediction against the gradients and AdamW state a real step allocates, full and LoRA, tied or not."""
    import tinypeft as tp
    from tinypeft import LoraConfig, get_peft_model
    from tinypeft.models.gpt2 import GPT2Config
    from tinypeft.optim import AdamW

    def models():
        gpt2 = GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=300, n_positions=32)
        llama = tp.AutoConfig.for_model("llama", vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
        for name, config in [("GPT-2 (tied embeddings)", gpt2), ("Llama (untied)", llama)]:
            tp.manual_seed(0)
            yield f"{name}, full", tp.AutoModelForCausalLM.from_config(config)
            tp.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lora = get_peft_model(tp.AutoModelForCausalLM.from_config(config),
                                      LoraConfig(task_type="CAUSAL_LM", r=4, target_modules="all-linear"))
            yield f"{name}, LoRA", lora

    ids = np.random.default_rng(0).integers(0, 300, (2, 8))
    for name, model in models():
        got = training_state_bytes(model)
        assert isinstance(got, dict), f"{name}: return a dict with 'parameters', 'gradients' and 'optimizer'"
        params = {id(p): p for p in model.parameters()}.values()
        want = {"parameters": sum(p.data.nbytes for p in params)}
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        want["gradients"] = sum(p.grad.data.nbytes for p in params if p.grad is not None)
        opt = AdamW([p for p in params if p.requires_grad], lr=1e-3)
        opt.step()
        want["optimizer"] = sum(v.data.nbytes for s in opt.state.values() for v in s.values() if hasattr(v, "data"))
        for key in ("parameters", "gradients", "optimizer"):
            assert key in got, f"{name}: the dict has no {key!r}"
            assert int(got[key]) == want[key], f"{name}: {key} {int(got[key]):,} bytes, measured {want[key]:,}"
