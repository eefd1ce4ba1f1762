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
