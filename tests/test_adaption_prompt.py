"""Llama-Adapter (AdaptionPromptConfig) on the tiny random Llama (and GPT-2): zero init, gradients by finite differences,
PEFT's file layout, the cache, bad configs. PEFT's own numbers: tests/test_adaption_prompt_parity.py."""
import json
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.checkpoint_io import load_file
from tinypeft.peft import AdaptionPromptConfig, PeftModel, get_peft_model
from tinypeft.testing import gradcheck

MODELS = Path(__file__).parent / "fixtures" / "models"
IDS = np.array([[5, 6, 7, 8], [9, 10, 11, 12]])


def llama(arch="llama"):
    return tp.AutoModelForCausalLM.from_pretrained(MODELS / arch)


def adapted(gate=0.5, arch="llama", **kw):
    model = get_peft_model(llama(arch), AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=kw.pop("adapter_len", 3),
                                                         adapter_layers=kw.pop("adapter_layers", 2), **kw))
    for n, p in model.named_parameters():
        if ".adaption_gate." in n and gate is not None:
            p.data[...] = gate
    return model.eval()


def test_a_new_adapter_changes_nothing_and_trains_only_prompts_and_gates(capsys):
    model = adapted(gate=None)
    with tp.no_grad():
        np.testing.assert_array_equal(model(input_ids=IDS).logits.numpy(), llama()(input_ids=IDS).logits.numpy())
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == sorted(f"base_model.model.model.layers.{i}.self_attn.adaption_{w}.default"
                               for i in (0, 1) for w in ("prompt", "gate"))
    attn = model.base_model.model.model.layers[1].self_attn
    assert type(attn).__name__ == "AdaptedAttention" and type(attn.model).__name__ == "LlamaAttention"
    assert attn.adaption_prompt["default"].shape == (1, 3, 32) and attn.adaption_gate["default"].shape == (1,)
    model.print_trainable_parameters()
    assert capsys.readouterr().out.strip().startswith("trainable params: 194 ||")  # 2 x (3 x 32 + 1)


def test_adapter_layers_are_counted_from_the_top():
    model = adapted(adapter_layers=1)
    layers = model.base_model.model.model.layers
    assert type(layers[0].self_attn).__name__ == "LlamaAttention"
    assert type(layers[1].self_attn).__name__ == "AdaptedAttention"


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_gradients_of_prompts_and_gates(arch):
    model = adapted(arch=arch).double()
    inner = model.base_model.model
    attn = inner.model.layers[1].self_attn if arch == "llama" else inner.transformer.h[1].attn
    prompt, gate = attn.adaption_prompt["default"], attn.adaption_gate["default"]

    def fn(p, g):
        return model(input_ids=IDS[:1], labels=IDS[:1]).loss

    assert gradcheck(fn, [prompt, gate], atol=1e-6)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_cached_generation_equals_full_forward_greedy(arch):
    model = adapted(gate=3.0, arch=arch)
    got = model.generate(input_ids=IDS[:1], max_new_tokens=6, do_sample=False).numpy()
    ids = IDS[:1]
    for _ in range(6):
        with tp.no_grad():
            nxt = model(input_ids=ids).logits.numpy()[:, -1].argmax(-1)
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
    np.testing.assert_array_equal(got, ids)


def test_saved_files_use_peft_s_keys_and_reload(tmp_path):
    model = adapted()
    with tp.no_grad():
        want = model(input_ids=IDS).logits.numpy()
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "ADAPTION_PROMPT" and cfg["target_modules"] == "self_attn"
    assert (cfg["adapter_len"], cfg["adapter_layers"]) == (3, 2)
    state = load_file(tmp_path / "adapter_model.safetensors")
    assert sorted(state) == sorted(f"base_model.model.model.layers.{i}.self_attn.adaption_{w}"
                                   for i in (0, 1) for w in ("prompt", "gate"))
    loaded = PeftModel.from_pretrained(llama(), tmp_path)
    with tp.no_grad():
        np.testing.assert_array_equal(loaded(input_ids=IDS).logits.numpy(), want)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_two_adapters_one_at_a_time_and_disable():
    model = adapted(gate=1.0)
    model.add_adapter("b", AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=2, adapter_layers=1))
    with tp.no_grad():
        first = model(input_ids=IDS).logits.numpy()
        model.set_adapter("b")  # its gate is still zero: the base model's output
        np.testing.assert_array_equal(model(input_ids=IDS).logits.numpy(), llama()(input_ids=IDS).logits.numpy())
        model.set_adapter("default")
        np.testing.assert_array_equal(model(input_ids=IDS).logits.numpy(), first)
        with model.disable_adapter():
            np.testing.assert_array_equal(model(input_ids=IDS).logits.numpy(), llama()(input_ids=IDS).logits.numpy())
    assert model.unload() is not None
    assert type(model.base_model.model.model.layers[1].self_attn).__name__ == "LlamaAttention"


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="more adapter layers '3' than the model has '2'"):
        adapted(adapter_layers=3)
    with pytest.raises(ValueError, match="adapter_len must be a positive int"):
        get_peft_model(llama(), AdaptionPromptConfig(adapter_layers=1))
    opt = tp.AutoModelForCausalLM.from_pretrained(MODELS / "opt")
    with pytest.raises(ValueError, match="Unsupported model type for adaption prompt: 'opt'"):
        get_peft_model(opt, AdaptionPromptConfig(adapter_len=2, adapter_layers=1))
    with pytest.raises(NotImplementedError, match="cannot be merged"):
        adapted().merge_and_unload()
