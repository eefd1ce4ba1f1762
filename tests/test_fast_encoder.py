"""fast_encoder's inference path for BERT's layers against the modules' forward (the reference path)."""
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft import LoraConfig, get_peft_model
from tinypeft.backend import cmatmul
from tinypeft.models import fast_encoder
from tinypeft.models.bert import BertModel

MODELS = Path(__file__).parent / "fixtures" / "models"
pytestmark = pytest.mark.skipif(not cmatmul.available(), reason="C extension not built")


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of fast_encoder.encode."""
    calls = []
    real = fast_encoder.encode
    monkeypatch.setattr(fast_encoder, "encode", lambda *a: calls.append(1) or real(*a))
    return calls


def batch(model, B=3, T=9):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, model.config.vocab_size, (B, T))
    mask = np.ones((B, T), np.int64)
    mask[1, 6:] = 0  # right padding
    mask[2, 2:] = 0
    return ids, mask


@pytest.mark.parametrize("name", ["bert-base", "minilm"])
def test_inference_gives_the_modules_hidden_states(name, spy):
    if name == "minilm":
        model = BertModel.from_pretrained(tp.hub.fetch_minilm())
    else:
        model = BertModel.from_pretrained(MODELS / name)
    ids, mask = batch(model)
    ref = model(input_ids=ids, attention_mask=mask)  # parameters require grad: the modules, with a graph
    assert not spy and ref.last_hidden_state.requires_grad
    with tp.no_grad():
        fast = model(input_ids=ids, attention_mask=mask)
    assert spy and not fast.last_hidden_state.requires_grad
    want, got = ref.last_hidden_state.detach().numpy(), fast.last_hidden_state.numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())
    np.testing.assert_allclose(fast.pooler_output.numpy(), ref.pooler_output.detach().numpy(), rtol=0, atol=1e-6)
    # frozen parameters and an input that needs no gradient: no graph is needed either
    for p in model.parameters():
        p.requires_grad = False
    again = model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    assert len(spy) == 2 and np.array_equal(again, got)


def test_the_modules_run_where_the_inference_path_would_differ(spy):
    model = BertModel.from_pretrained(MODELS / "bert-base")
    ids, mask = batch(model)
    model.train()  # dropout
    with tp.no_grad():
        model(input_ids=ids, attention_mask=mask)
    model.eval()
    tp.backend.set_matmul_backend("numpy")  # the NumPy reference kernels
    try:
        with tp.no_grad():
            numpy_out = model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    finally:
        tp.backend.set_matmul_backend("c")
    assert not spy
    with tp.no_grad():
        fast_out = model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    assert len(spy) == 1
    np.testing.assert_allclose(fast_out, numpy_out, rtol=0, atol=2e-5 * np.abs(numpy_out).max())
    # an adapter replaces the query projection's class: its LoRA update must be in the output
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["query"], init_lora_weights=False))
    with tp.no_grad():
        lora_out = peft_model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    assert len(spy) == 1 and np.abs(lora_out - fast_out).max() > 1e-4


def test_minilm_sentence_embeddings_on_the_inference_path_match_transformers(spy):
    # the stored sentence-transformers embeddings (tests/fixtures/make_fixtures.py, transformers + torch)
    from tinypeft.models.pooling import sentence_embeddings
    from tinypeft.testing import assert_close_to_scale

    ref = np.load(Path(__file__).parent / "fixtures" / "reference" / "minilm_embeddings.npz")
    model = BertModel.from_pretrained(tp.hub.fetch_minilm())
    with tp.no_grad():
        emb = sentence_embeddings(model, *(tp.tensor(ref[k]) for k in ("input_ids", "attention_mask", "token_type_ids")))
    assert spy
    assert_close_to_scale(emb.numpy(), ref["embeddings"], rtol=1e-5)
