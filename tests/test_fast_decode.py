"""fast_decode's plain-NumPy decoding step against the modules' forward (the reference path)."""
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
import tinypeft.models.generation as generation
from tinypeft import LoraConfig, get_peft_model
from tinypeft.models import AutoModelForCausalLM
from tinypeft.models.fast_decode import StaticCache, fast_decoder
from tinypeft.models.masking import position_ids_from_mask

MODELS = Path(__file__).parent / "fixtures" / "models"
IDS = np.array([[5, 6, 7, 8, 9, 20], [1, 1, 10, 11, 12, 21]])  # row 1 left-padded
MASK = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request):
    return AutoModelForCausalLM.from_pretrained(MODELS / request.param)


def test_one_step_gives_the_modules_logits(model):
    """Prompt of 5 through the modules, then token 6 through the decoder = the modules on all 6 tokens."""
    with tp.no_grad():
        full, prefill = _reference(model)
    cache = StaticCache(prefill.past_key_values, max_length=10)
    decoder = fast_decoder(model)
    assert decoder is not None
    logits = decoder(IDS[:, 5], MASK.sum(1) - 1, MASK.astype(bool), cache)
    scale = np.abs(full[:, -1]).max()
    assert np.abs(logits - full[:, -1]).max() <= 1e-5 * scale
    # the step wrote its key into the preallocated cache, in place
    assert cache.keys[0].shape[2] == 10 and np.abs(cache.keys[0][:, :, 5]).sum() > 0


def _reference(model):
    full = model(input_ids=IDS, attention_mask=MASK, position_ids=position_ids_from_mask(MASK, 0, 6)).logits.numpy()
    prefill = model(input_ids=IDS[:, :5], attention_mask=MASK[:, :5], position_ids=position_ids_from_mask(MASK, 0, 5),
                    use_cache=True)
    return full, prefill


@pytest.mark.parametrize("kw", [dict(max_new_tokens=20), dict(max_new_tokens=10, num_beams=3, num_return_sequences=2,
                                                                repetition_penalty=1.3)], ids=["greedy", "beams"])
def test_generate_same_tokens_with_and_without_the_fast_path(model, kw, monkeypatch):
    fast = model.generate(input_ids=IDS, attention_mask=MASK, eos_token_id=[], **kw).numpy()
    monkeypatch.setattr(generation, "fast_decoder", lambda m: None)
    slow = model.generate(input_ids=IDS, attention_mask=MASK, eos_token_id=[], **kw).numpy()
    np.testing.assert_array_equal(fast, slow)


def test_adapters_training_and_other_models_keep_the_module_path():
    gpt2 = AutoModelForCausalLM.from_pretrained(MODELS / "gpt2")
    assert fast_decoder(gpt2) is not None
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(MODELS / "gpt2"),
                          LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["c_attn"]))
    assert fast_decoder(lora.get_base_model()) is None  # a LoRA layer is not a plain Conv1D
    gpt2.train()
    assert fast_decoder(gpt2) is None
    assert fast_decoder(AutoModelForCausalLM.from_pretrained(MODELS / "opt")) is None


def test_static_cache_reorders_rows():
    past = ((tp.tensor(np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)),
             tp.tensor(-np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2))),)
    cache = StaticCache(past, max_length=4)
    cache.reorder(np.array([1, 1]))
    np.testing.assert_array_equal(cache.keys[0][:, :, :2], np.arange(8).reshape(2, 1, 2, 2)[[1, 1]])
    k, v = cache.append(0, np.ones((2, 1, 2), np.float32), np.zeros((2, 1, 2), np.float32))
    assert k.shape == (2, 1, 3, 2) and (k[:, :, 2] == 1).all() and np.shares_memory(k, cache.keys[0])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("config", [dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
                                    dict(load_in_8bit=True)], ids=["nf4", "int8"])
def test_quantized_layers_take_the_fast_path_with_the_modules_numbers(arch, config, monkeypatch):
    """Linear4bit / Linear8bitLt (GGUFLinear: tests/test_quantization_gguf_blocks.py) decode through the plain
    step too: their weights' C products (a layer's q, k, v in one call), the modules' logits and tokens."""
    model = AutoModelForCausalLM.from_pretrained(MODELS / arch, quantization_config=tp.BitsAndBytesConfig(**config))
    decoder = fast_decoder(model)
    assert decoder is not None
    with tp.no_grad():
        full, prefill = _reference(model)
    logits = decoder(IDS[:, 5], MASK.sum(1) - 1, MASK.astype(bool), StaticCache(prefill.past_key_values, 10))
    assert np.abs(logits - full[:, -1]).max() <= 1e-5 * np.abs(full[:, -1]).max()
    fast = model.generate(input_ids=IDS[:1], eos_token_id=[], max_new_tokens=20).numpy()  # one row: grouped
    monkeypatch.setattr(generation, "fast_decoder", lambda m: None)
    np.testing.assert_array_equal(fast, model.generate(input_ids=IDS[:1], eos_token_id=[], max_new_tokens=20).numpy())


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_the_prompt_computes_only_the_last_positions_logits(arch, monkeypatch):
    """logits_to_keep=n (transformers' argument): the head runs on the last n positions only; generate() asks
    for 1 on the prompt."""
    model = AutoModelForCausalLM.from_pretrained(MODELS / arch)
    with tp.no_grad():
        full = model(input_ids=IDS, attention_mask=MASK).logits.numpy()
        last = model(input_ids=IDS, attention_mask=MASK, logits_to_keep=1).logits.numpy()
        two = model(input_ids=IDS, attention_mask=MASK, logits_to_keep=2).logits.numpy()
    scale = np.abs(full).max()  # fewer rows may take another product kernel: the same sums, other order
    assert last.shape == (2, 1, full.shape[-1]) and np.abs(last[:, 0] - full[:, -1]).max() <= 1e-6 * scale
    assert two.shape == (2, 2, full.shape[-1]) and np.abs(two - full[:, -2:]).max() <= 1e-6 * scale
    with pytest.raises(NotImplementedError, match="logits_to_keep"):
        model(input_ids=IDS, logits_to_keep=np.array([0, 5]))
    seen, head = [], model.lm_head.forward
    monkeypatch.setattr(model.lm_head, "forward", lambda x: seen.append(x.shape) or head(x))
    model.generate(input_ids=IDS, attention_mask=MASK, eos_token_id=[], max_new_tokens=3)
    assert seen[0] == (2, 1, model.config.hidden_size)  # the prompt's head: its last position only


@pytest.mark.parametrize("config", [dict(load_in_4bit=True, bnb_4bit_quant_type="nf4"), dict(load_in_8bit=True)],
                         ids=["nf4", "int8"])
def test_the_c_layer_step_gives_the_python_loops_logits(config):
    """A quantized Llama's layers in one C call each (csrc/decode_step.c) against LlamaDecoder's Python loop, the
    reference: one row, no padding; several steps, so the cache it writes is read back."""
    model = AutoModelForCausalLM.from_pretrained(MODELS / "llama", quantization_config=tp.BitsAndBytesConfig(**config))
    decoder = fast_decoder(model)
    assert decoder.layer_steps is not None
    with tp.no_grad():
        _, prefill = _reference(model)
    past = tuple((k[:1], v[:1]) for k, v in prefill.past_key_values)
    caches = [StaticCache(past, 12), StaticCache(past, 12)]
    for t in range(5):
        ids, positions, mask = np.array([20 + t]), np.array([5 + t]), np.ones((1, 6 + t), dtype=bool)
        c = decoder(ids, positions, mask, caches[0])
        steps, decoder.layer_steps = decoder.layer_steps, None  # the Python loop
        py = decoder(ids, positions, mask, caches[1])
        decoder.layer_steps = steps
        assert np.abs(c - py).max() <= 1e-5 * np.abs(py).max(), t
        for cache in caches:
            cache.length += 1
    np.testing.assert_allclose(caches[0].keys[1], caches[1].keys[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(caches[0].values[1], caches[1].values[1], rtol=1e-5, atol=1e-6)
    assert fast_decoder(AutoModelForCausalLM.from_pretrained(MODELS / "llama")).layer_steps is None  # float32
