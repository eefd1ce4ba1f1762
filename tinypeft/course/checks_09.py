"""Checks for tutorials/09_sharing_adapters.md's exercises (see checking.py for how checks behave)."""
import os
import tempfile

import numpy as np

from .checking import _array, _close, _exercise
from .files import path as course_file

PEFT_FILES = [f"tests/fixtures/peft/{case}/adapter_model.safetensors"
              for case in ("lora_opt", "dora_llama", "ia3_opt", "prompt_tuning_gpt2", "lora_bert_seqcls")]


@_exercise
def check_read_safetensors(read_safetensors):
    """read_safetensors(path) -> (metadata, {key: array}) against the safetensors library, on PEFT's files and more."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    mixed = os.path.join(tempfile.mkdtemp(prefix="check09-"), "mixed.safetensors")
    rng = np.random.default_rng(9)
    save_file({"a.f16": rng.standard_normal((3, 5)).astype(np.float16), "b.i64": np.arange(7, dtype=np.int64),
               "c.f32": rng.standard_normal((2, 1, 4)).astype(np.float32), "d.scalar": np.array(2.5, np.float32)},
              mixed, metadata={"format": "pt", "made_by": "check_read_safetensors"})
    for path in [course_file(f) for f in PEFT_FILES] + [mixed]:
        got = read_safetensors(path)
        assert got is not None and len(got) == 2, "return the pair (metadata, tensors)"
        metadata, tensors = got
        with safe_open(path, framework="numpy") as f:
            want_meta = f.metadata()
        assert metadata == want_meta, f"{path}: metadata {metadata!r}, expected {want_meta!r}"
        want = load_file(path)
        assert set(tensors) == set(want), f"{path}: keys {sorted(set(tensors) ^ set(want))[:3]} differ (is __metadata__ in?)"
        for k, v in want.items():
            g = np.asarray(tensors[k])
            assert g.dtype == v.dtype, f"{path}: {k} has dtype {g.dtype}, expected {v.dtype}"
            assert g.shape == v.shape, f"{path}: {k} has shape {g.shape}, expected {v.shape}"
            assert np.array_equal(g, v), f"{path}: {k}: values differ (data_offsets count from the end of the header)"


def _two_adapter_models():
    """(name, PeftModel with adapters "default" and "other") for LoRA, DoRA, IA3 and a SEQ_CLS LoRA."""
    import tinypeft as tp
    from tinypeft import (AutoModelForCausalLM, AutoModelForSequenceClassification, IA3Config, LoraConfig,
                          get_peft_model)

    tp.manual_seed(0)
    opt = lambda: AutoModelForCausalLM.from_pretrained(course_file("tests/fixtures/models/opt"))  # noqa: E731
    made = []
    for name, model_fn, config in [
        ("LoRA on OPT", opt, lambda: LoraConfig(task_type="CAUSAL_LM", r=2, init_lora_weights=False)),
        ("DoRA on OPT", opt, lambda: LoraConfig(task_type="CAUSAL_LM", r=2, use_dora=True, target_modules=["q_proj"])),
        ("IA3 on OPT", opt, lambda: IA3Config(task_type="CAUSAL_LM")),
        ("LoRA on a BERT classifier",
         lambda: AutoModelForSequenceClassification.from_pretrained(course_file("tests/fixtures/models/bert")),
         lambda: LoraConfig(task_type="SEQ_CLS", r=2)),
    ]:
        model = get_peft_model(model_fn(), config())
        model.add_adapter("other", config())
        made.append((name, model))
    return made


@_exercise
def check_peft_key(peft_key):
    """peft_key(key, adapter) maps the state dict onto exactly the keys (and values) save_pretrained writes."""
    from safetensors.numpy import load_file

    for name, model in _two_adapter_models():
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        for adapter in ("default", "other"):
            folder = tempfile.mkdtemp(prefix="check09-")
            model.save_pretrained(folder, selected_adapters=[adapter])
            sub = folder if adapter == "default" else os.path.join(folder, adapter)
            saved = load_file(os.path.join(sub, "adapter_model.safetensors"))
            mapped = {}
            for key in state:
                out = peft_key(key, adapter)
                if out is None:
                    continue
                assert out in saved, (f"{name}, adapter {adapter!r}: {key} -> {out!r}, which is not in the saved file "
                                      f"(the base weights and other adapters' weights should give None)")
                assert out not in mapped, f"{name}: both {mapped.get(out)} and {key} map to {out}"
                mapped[out] = key
                _close(state[key], saved[out], f"{name}: {key} -> {out}")
            missing = sorted(set(saved) - set(mapped))
            assert not missing, f"{name}, adapter {adapter!r}: no state-dict key maps to {missing[:3]}"


@_exercise
def check_cat_adapter(cat_adapters):
    """cat_adapters(As, Bs, scalings, weights) == add_weighted_adapter(..., combination_type="cat") on every layer."""
    import tinypeft as tp
    from tinypeft import AutoModelForCausalLM, LoraConfig, get_peft_model

    tp.manual_seed(3)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(course_file("tests/fixtures/models/opt")),
                           LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, init_lora_weights=False))
    model.add_adapter("b", LoraConfig(task_type="CAUSAL_LM", r=2, lora_alpha=6, init_lora_weights=False))
    weights = [0.7, -0.4]
    model.add_weighted_adapter(["default", "b"], weights, adapter_name="mix", combination_type="cat")
    for layer_name, layer in model.named_modules():
        if not hasattr(layer, "lora_A") or "mix" not in layer.lora_A:
            continue
        names = ["default", "b"]
        As = [layer.lora_A[n].weight.detach().numpy().copy() for n in names]
        Bs = [layer.lora_B[n].weight.detach().numpy().copy() for n in names]
        got = cat_adapters(As, Bs, [layer.scaling[n] for n in names], weights)
        assert got is not None and len(got) == 2, "return the pair (A, B)"
        A, B = (_array(x, f"{layer_name}: {n}") for x, n in zip(got, "AB"))
        want_delta = sum(w * layer.scaling[n] * b @ a for w, n, a, b in zip(weights, names, As, Bs))
        assert A.shape == (6, As[0].shape[1]) and B.shape == (Bs[0].shape[0], 6), (
            f"{layer_name}: A {A.shape}, B {B.shape}; want A [r1 + r2, in] = (6, {As[0].shape[1]}), "
            f"B [out, r1 + r2] = ({Bs[0].shape[0]}, 6)")
        _close(B @ A, want_delta, f"{layer_name}: B @ A against sum_i w_i s_i B_i A_i", rtol=1e-5, atol=1e-6)
        _close(A, layer.lora_A["mix"].weight.detach().numpy(), f"{layer_name}: A, against add_weighted_adapter's (B @ A is "
               "right: put w_i s_i on A, not on B)", rtol=1e-5, atol=1e-6)
        _close(B, layer.lora_B["mix"].weight.detach().numpy(), f"{layer_name}: B", rtol=1e-5, atol=1e-6)
