"""Checks for tutorials/09_sharing_adapters.md's exercises (see checking.py for how checks behave)."""
import os
import tempfile

import numpy as np

from .checking import _close, _exercise, _predicted
from .files import path as course_file

@_exercise
def check_write_safetensors(write_safetensors):
    """write_safetensors(path, tensors, metadata): the safetensors library must read back every tensor and the metadata."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    from tinypeft.checkpoint_io import read_header

    rng = np.random.default_rng(9)
    cases = [
        ({"base_model.model.q_proj.lora_A.weight": rng.standard_normal((4, 16)).astype(np.float32),
          "base_model.model.q_proj.lora_B.weight": np.zeros((16, 4), np.float32)}, {"format": "pt"}),
        ({"a.f16": rng.standard_normal((3, 5)).astype(np.float16), "b.i64": np.arange(7, dtype=np.int64),
          "c.f64": rng.standard_normal((2, 1, 3)), "d.scalar": np.array(2.5, np.float32)},
         {"format": "pt", "made_by": "check_write_safetensors"}),
    ]
    with tempfile.TemporaryDirectory(prefix="check09-") as tmp:
        for k, (tensors, metadata) in enumerate(cases):
            path = os.path.join(tmp, f"t{k}.safetensors")
            kept = {name: a.copy() for name, a in tensors.items()}
            write_safetensors(path, tensors, metadata)
            assert os.path.exists(path), f"write_safetensors wrote nothing at {path}"
            try:
                back = load_file(path)
                with safe_open(path, framework="numpy") as f:
                    meta = f.metadata()
            except Exception as e:  # the library's own complaint, as a check failure
                raise AssertionError(f"the safetensors library cannot read your file: {e}") from None
            assert meta == metadata, f"metadata read back as {meta!r}, expected {metadata!r} (in the header's __metadata__)"
            assert set(back) == set(kept), f"keys read back: {sorted(back)}, expected {sorted(kept)}"
            for name, want in kept.items():
                got = back[name]
                assert got.dtype == want.dtype and got.shape == want.shape, (
                    f"{name}: read back as {got.dtype} {got.shape}, written {want.dtype} {want.shape}")
                assert np.array_equal(got, want), f"{name}: the values read back differ (byte order? offsets?)"
            header, data_start = read_header(path)  # tinypeft's stricter reader: no gaps, in order
            assert data_start % 8 == 0, (f"the data starts at byte {data_start}; pad the header with spaces so that "
                                         "8 + len(header) is a multiple of 8, as the library does (aligned reads)")


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
def check_predict_mix_ranks(prediction):
    """prediction {"cat": r, "linear": r}: the rank of s B @ A of a mix of two rank-4 adapters; measured by SVD."""
    import tinypeft as tp
    from tinypeft import AutoModelForCausalLM, LoraConfig, get_peft_model

    guess = _predicted(prediction)
    assert isinstance(guess, dict) and set(guess) == {"cat", "linear"}, 'predict a dict {"cat": r, "linear": r}'
    tp.manual_seed(3)
    config = lambda: LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, init_lora_weights=False)  # noqa: E731
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(course_file("tests/fixtures/models/opt")), config())
    model.add_adapter("b", config())
    ranks = {}
    for kind in ("cat", "linear"):
        model.add_weighted_adapter(["default", "b"], [0.7, 0.3], adapter_name=kind, combination_type=kind)
        layer = model.base_model.model.model.decoder.layers[0].self_attn.q_proj
        delta = layer.scaling[kind] * layer.lora_B[kind].weight.detach().numpy() @ layer.lora_A[kind].weight.detach().numpy()
        sv = np.linalg.svd(delta.astype(np.float64), compute_uv=False)
        ranks[kind] = int((sv > 1e-5 * sv[0]).sum())
    print(f"the run: rank of the mixed update on q_proj [{delta.shape[0]}, {delta.shape[1]}]: {ranks}")
    assert {k: int(v) for k, v in guess.items()} == ranks, (
        f"you predicted {guess}; the ranks are {ranks}. How many columns does each mix's B have, and can a sum of "
        "two rank-4 updates need more?")
