"""Prompt tuning, prefix tuning and P-tuning: PEFT's adapters give PEFT's outputs here, gradients are proven,
and (parity marker) our configs and files are PEFT's own.

The fixtures (tests/fixtures/make_peft_fixtures.py) hold peft 0.21.2's logits and two greedy generations:
`gen_output` (peft's generate()) and `gen_output_forward` (greedy decoding by full forward passes, no cache).
With transformers 5.24, peft 0.21.2's generate() is broken for prompt learning (it looks for the cache under
`past_key_values`, which transformers now calls `cache`: prompts are re-inserted at every step and prefixes
never reach the model), so we compare with `gen_output_forward`, PEFT's forward semantics.
"""
import json
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.checkpoint_io import load_file
from tinypeft.models.masking import position_ids_from_mask
from tinypeft.peft import (PeftConfig, PeftModel, PrefixEncoder, PrefixTuningConfig, PromptEmbedding,
                           PromptEncoder, PromptEncoderConfig, PromptTuningConfig, PromptTuningInit, TaskType,
                           get_peft_model)
from tinypeft.peft.auto import _auto_for_task
from tinypeft.testing import gradcheck

PEFT = Path(__file__).parent / "fixtures" / "peft"
CASES = ["prompt_tuning_gpt2", "prompt_tuning_t5", "prompt_tuning_bert_seqcls", "prefix_tuning_gpt2",
         "prefix_tuning_llama", "prefix_tuning_t5", "p_tuning_gpt2", "p_tuning_bert_seqcls",
         "prompt_tuning_opt", "prompt_tuning_llama", "prompt_tuning_mt5", "prefix_tuning_opt", "p_tuning_opt",
         "p_tuning_llama", "p_tuning_t5"]
COUNTS = json.loads((PEFT / "counts.json").read_text())["cases"]
MODELS = Path(__file__).parent / "fixtures" / "models"


def base_for(case):
    cfg = json.loads((PEFT / case / "adapter_config.json").read_text())
    return _auto_for_task(cfg["task_type"]).from_pretrained(cfg["base_model_name_or_path"])


def fresh(case):
    """A new adapter with the case's config, as peft built it before training (inference_mode False)."""
    config = PeftConfig.from_pretrained(PEFT / case)
    config.inference_mode = False
    config.modules_to_save = None  # the task class adds the heads again
    return get_peft_model(base_for(case), config)


def forward(model, ref):
    kw = dict(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])
    if "decoder_input_ids" in ref:
        kw["decoder_input_ids"] = ref["decoder_input_ids"]
    with tp.no_grad():
        return model(**kw).logits.numpy()


def greedy_by_forward(model, ids, mask, steps):
    """Decoder-only greedy decoding by full forward passes, positions counted from the mask (no cache)."""
    for _ in range(steps):
        with tp.no_grad():
            logits = model(input_ids=ids, attention_mask=mask,
                           position_ids=position_ids_from_mask(mask, 0, ids.shape[1])).logits.numpy()
        ids = np.concatenate([ids, logits[:, -1].argmax(-1)[:, None]], 1)
        mask = np.concatenate([mask, np.ones((len(ids), 1), mask.dtype)], 1)
    return ids


# -- PEFT's adapters ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_peft_adapter_gives_peft_logits(case):
    ref = dict(np.load(PEFT / case / "reference.npz"))
    model = PeftModel.from_pretrained(base_for(case), PEFT / case)
    got, want = forward(model, ref), ref["logits"]
    assert got.shape == want.shape  # prompt tuning / P-tuning on a causal LM: N + T positions
    if got.ndim == 3 and "decoder_input_ids" not in ref:  # decoder-only: padding positions are undefined
        N = got.shape[1] - ref["attention_mask"].shape[1]
        real = np.concatenate([np.ones((len(got), N), bool), ref["attention_mask"].astype(bool)], 1)
        got, want = got[real], want[real]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", [c for c in CASES if "bert" not in c])
@pytest.mark.parametrize("use_cache", [True, False])
def test_peft_adapter_generates_peft_tokens(case, use_cache):
    ref = dict(np.load(PEFT / case / "reference.npz"))
    model = PeftModel.from_pretrained(base_for(case), PEFT / case)
    want = ref["gen_output_forward"]
    seq2seq = "decoder_input_ids" in ref
    ids, mask = ref["gen_input_ids"], ref["gen_attention_mask"]
    steps = want.shape[1] - (1 if seq2seq else ids.shape[1])
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=steps, use_cache=use_cache).numpy()
    if "prefix" in case and not seq2seq:
        # PEFT's generate() gives a prefix-tuned model positions from the mask (+N); its plain forward, which
        # made gen_output_forward, counts from the first token. They agree on the unpadded row 0.
        np.testing.assert_array_equal(out[0], want[0])
        np.testing.assert_array_equal(out, greedy_by_forward(model, ids, mask, steps))
    else:
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("case", CASES)
def test_same_parameters_and_counts_as_peft(case, capsys):
    model = fresh(case)
    assert sorted(model.state_dict()) == sorted(json.loads((PEFT / case / "keys.json").read_text()))
    trainable, total = model.get_nb_trainable_parameters()
    assert (trainable, total) == (COUNTS[case]["trainable"], COUNTS[case]["all"])
    model.print_trainable_parameters()
    assert capsys.readouterr().out.strip() == COUNTS[case]["line"]


@pytest.mark.parametrize("case", CASES)
def test_config_file_round_trip_is_peft_file(case, tmp_path):
    model = PeftModel.from_pretrained(base_for(case), PEFT / case)
    model.save_pretrained(tmp_path)
    ours = json.loads((tmp_path / "adapter_config.json").read_text())
    theirs = json.loads((PEFT / case / "adapter_config.json").read_text())
    assert sorted(ours) == sorted(theirs)
    for k in ours:
        if k != "modules_to_save":  # PEFT lists the SEQ_CLS heads twice; we list them once
            assert ours[k] == theirs[k], k
    saved = load_file(tmp_path / "adapter_model.safetensors")
    stored = load_file(PEFT / case / "adapter_model.safetensors")
    assert sorted(saved) == sorted(stored)
    for k in saved:
        np.testing.assert_array_equal(saved[k], stored[k])


def test_auto_peft_model_loads_prompt_adapter():
    from tinypeft.peft import AutoPeftModelForCausalLM

    ref = dict(np.load(PEFT / "p_tuning_gpt2" / "reference.npz"))
    model = AutoPeftModelForCausalLM.from_pretrained(PEFT / "p_tuning_gpt2")
    real = np.concatenate([np.ones((3, 4), bool), ref["attention_mask"].astype(bool)], 1)
    np.testing.assert_allclose(forward(model, ref)[real], ref["logits"][real], atol=1e-4, rtol=0)


# -- behaviour ----------------------------------------------------------------------------------------------
def test_causal_lm_prompt_tuning_inputs_labels_and_disable():
    model = fresh("prompt_tuning_gpt2")
    ids = np.array([[5, 6, 7], [8, 9, 10]])
    labels = np.array([[5, 6, 7], [8, -100, 10]])
    out = model(input_ids=ids, attention_mask=np.ones_like(ids), labels=labels)
    assert out.logits.shape == (2, 4 + 3, 512)
    # the loss is the base model's on [prompts; tokens] with 4 ignored label positions in front
    emb = tp.ops.shape.cat([model.get_prompt(2), model.word_embeddings(ids)], dim=1)
    base = model.get_base_model()
    want = base(inputs_embeds=emb, labels=np.concatenate([np.full((2, 4), -100), labels], 1))
    np.testing.assert_allclose(out.loss.item(), want.loss.item(), rtol=1e-6)
    with model.disable_adapter():
        np.testing.assert_array_equal(model(input_ids=ids).logits.numpy(), base(input_ids=ids).logits.numpy())


def test_seq_cls_token_type_ids_get_zeros():
    model = fresh("prompt_tuning_bert_seqcls")
    ids = np.array([[5, 6, 7, 8]])
    tt = np.array([[0, 0, 1, 1]])
    got = model(input_ids=ids, token_type_ids=tt).logits.detach().numpy()
    base = model.get_base_model()
    emb = tp.ops.shape.cat([model.get_prompt(1), model.word_embeddings(ids)], dim=1)
    want = base(inputs_embeds=emb, token_type_ids=np.array([[0, 0, 0, 0, 0, 0, 1, 1]])).logits.detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_prefix_tuning_gqa_sizes_and_shapes():
    model = fresh("prefix_tuning_llama")
    cfg = model.peft_config["default"]
    assert (cfg.token_dim, cfg.num_attention_heads, cfg.encoder_hidden_size) == (16, 2, 16)  # 2 kv heads x 8
    past = model.get_prompt(3)
    assert len(past) == 2 and all(k.shape == v.shape == (3, 2, 3, 8) for k, v in past)


def bert_prefix_model(num_virtual_tokens=3):
    return get_peft_model(base_for("prompt_tuning_bert_seqcls"),
                          PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=num_virtual_tokens))


def test_prefix_tuning_on_bert_seqcls_changes_the_logits_and_trains():
    """BERT takes past_key_values (P-tuning v2's prefixes): the prefix changes the logits, and padding is still hidden."""
    model = bert_prefix_model()
    model.eval()
    ids, mask = np.array([[2, 5, 7, 9, 3], [2, 4, 6, 1, 1]]), np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with tp.no_grad():
        prefixed = model(input_ids=ids, attention_mask=mask).logits.numpy()
        with model.disable_adapter():
            plain = model(input_ids=ids, attention_mask=mask).logits.numpy()
        short = model(input_ids=ids[1:, :3], attention_mask=mask[1:, :3]).logits.numpy()
    assert np.abs(prefixed - plain).min() > 1e-4  # the prefix reaches every row's output
    np.testing.assert_allclose(short, prefixed[1:], atol=1e-5)  # padded keys stay hidden behind the prefix
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["base_model.classifier.modules_to_save.default.bias",
                         "base_model.classifier.modules_to_save.default.weight", "prompt_encoder.default.embedding.weight"]


def test_gradient_through_bert_to_the_prefix():
    """float64 gradcheck of the classification loss with respect to the prefix table, through the frozen BERT."""
    model = bert_prefix_model(num_virtual_tokens=2).double()
    model.eval()
    table = model.prompt_encoder["default"].embedding.weight
    ids, mask, labels = np.array([[2, 5, 7], [2, 4, 1]]), np.array([[1, 1, 1], [1, 1, 0]]), np.array([0, 1])

    def fn(t):
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    assert gradcheck(fn, [table], atol=1e-6)


def test_bert_past_key_values_of_the_wrong_length_are_refused():
    model = base_for("prompt_tuning_bert_seqcls")
    pair = (tp.tensor(np.zeros((1, 4, 2, 8), np.float32)), tp.tensor(np.zeros((1, 4, 2, 8), np.float32)))
    with pytest.raises(ValueError, match="one pair per layer"):
        model(input_ids=np.array([[2, 5]]), past_key_values=(pair,))  # this BERT has 2 layers


def test_text_init_repeats_the_text_tokens():
    tok = tp.AutoTokenizer.from_pretrained(MODELS / "gpt2")
    text_ids = tok("hello world")["input_ids"]
    n = 2 * len(text_ids) + 1  # repeated, then cut
    config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=n, prompt_tuning_init="TEXT",
                                prompt_tuning_init_text="hello world", tokenizer_name_or_path=str(MODELS / "gpt2"))
    model = get_peft_model(base_for("prompt_tuning_gpt2"), config)
    want = model.word_embeddings.weight.data[(text_ids * 3)[:n]]
    np.testing.assert_array_equal(model.prompt_encoder["default"].embedding.weight.data, want)
    assert config.prompt_tuning_init == PromptTuningInit.TEXT
    with pytest.raises(ValueError, match="tokenizer_name_or_path"):
        PromptTuningConfig(prompt_tuning_init="TEXT", prompt_tuning_init_text="x")


def test_sample_vocab_init_takes_vocabulary_rows():
    model = get_peft_model(base_for("prompt_tuning_gpt2"), PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=5, prompt_tuning_init="SAMPLE_VOCAB"))
    rows, vocab = model.prompt_encoder["default"].embedding.weight.data, model.word_embeddings.weight.data
    assert all(np.any(np.all(vocab == r, axis=1)) for r in rows)


@pytest.mark.parametrize("case", ["prompt_tuning_gpt2", "prefix_tuning_llama", "p_tuning_gpt2", "prefix_tuning_t5",
                                  "prompt_tuning_t5", "p_tuning_bert_seqcls"])
def test_trained_adapter_saves_and_reloads(case, tmp_path):
    ref = dict(np.load(PEFT / case / "reference.npz"))
    model = fresh(case)
    model.eval()
    want = forward(model, ref)
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(base_for(case), tmp_path)
    np.testing.assert_allclose(forward(loaded, ref), want, atol=1e-5)


# -- gradients ----------------------------------------------------------------------------------------------
def small_config(cls, **kw):
    return cls(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=2, token_dim=6, num_layers=2,
               num_attention_heads=2, num_transformer_submodules=1, **kw)


@pytest.mark.parametrize("make", [
    lambda: PromptEmbedding(small_config(PromptTuningConfig), None),
    lambda: PrefixEncoder(small_config(PrefixTuningConfig, prefix_projection=False)),
    lambda: PrefixEncoder(small_config(PrefixTuningConfig, prefix_projection=True, encoder_hidden_size=5)),
    lambda: PromptEncoder(small_config(PromptEncoderConfig, encoder_hidden_size=5)),
    lambda: PromptEncoder(small_config(PromptEncoderConfig, encoder_hidden_size=3, encoder_reparameterization_type="LSTM")),
], ids=["prompt_tuning", "prefix", "prefix_projection", "p_tuning_mlp", "p_tuning_lstm"])
def test_prompt_encoder_gradients(make):
    encoder = make().double()
    params = list(encoder.parameters())
    tokens = np.arange(2)[None]

    def fn(*ps):
        return encoder(tokens)

    assert gradcheck(fn, params)


@pytest.mark.parametrize("case", ["prompt_tuning_gpt2", "prefix_tuning_gpt2", "prefix_tuning_llama", "p_tuning_gpt2"])
def test_gradient_through_the_model(case):
    """float64 gradcheck of loss(prompt table) through the whole frozen model."""
    model = fresh(case).double()
    model.eval()
    table = model.prompt_encoder["default"].embedding.weight
    ids = np.array([[5, 6, 7]])
    labels = np.array([[5, 6, 7]])

    def fn(t):
        return model(input_ids=ids, attention_mask=np.ones_like(ids), labels=labels).loss

    assert gradcheck(fn, [table], atol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_only_the_prompt_encoder_trains(case):
    model = fresh(case)
    ref = dict(np.load(PEFT / case / "reference.npz"))
    kw = dict(input_ids=ref["input_ids"][:2], attention_mask=ref["attention_mask"][:2])
    if "decoder_input_ids" in ref:
        kw["decoder_input_ids"] = ref["decoder_input_ids"][:2]
    out = model(**kw)
    (out.logits * tp.Tensor(np.random.default_rng(0).standard_normal(out.logits.shape))).sum().backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("prompt_encoder.default.") or ".modules_to_save.default." in n
                             for n in trainable)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and np.abs(p.grad.data).max() > 0, n
        else:
            assert p.grad is None, n


# -- live parity with peft ----------------------------------------------------------------------------------
def _peft_configs():
    import peft

    return {
        "prompt_tuning": (PromptTuningConfig, peft.PromptTuningConfig, dict(num_virtual_tokens=3)),
        "prefix_tuning": (PrefixTuningConfig, peft.PrefixTuningConfig, dict(num_virtual_tokens=3, prefix_projection=True)),
        "p_tuning": (PromptEncoderConfig, peft.PromptEncoderConfig, dict(num_virtual_tokens=3, encoder_hidden_size=8)),
    }


@pytest.mark.parity
@pytest.mark.parametrize("arch", ["gpt2", "llama", "t5", "bert"])
@pytest.mark.parametrize("method", ["prompt_tuning", "prefix_tuning", "p_tuning"])
def test_config_dict_matches_peft(arch, method):
    import peft
    import torch
    import transformers

    task = {"gpt2": "CAUSAL_LM", "llama": "CAUSAL_LM", "t5": "SEQ_2_SEQ_LM", "bert": "SEQ_CLS"}[arch]
    ours_cls, theirs_cls, kw = _peft_configs()[method]
    ours, theirs = ours_cls(task_type=task, **kw), theirs_cls(task_type=task, **kw)
    auto = {"CAUSAL_LM": transformers.AutoModelForCausalLM, "SEQ_2_SEQ_LM": transformers.AutoModelForSeq2SeqLM,
            "SEQ_CLS": transformers.AutoModelForSequenceClassification}[task]
    get_peft_model(_auto_for_task(task).from_pretrained(MODELS / arch), ours)
    peft.get_peft_model(auto.from_pretrained(MODELS / arch), theirs)
    a, b = ours.to_dict(), json.loads(json.dumps(theirs.to_dict(), default=str))
    assert sorted(a) == sorted(b)
    for k in a:
        if k == "modules_to_save":
            assert (a[k] is None) == (b[k] is None) and set(a[k] or []) == set(b[k] or [])
        elif k != "base_model_name_or_path":
            assert a[k] == b[k], k


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_our_adapter_loads_in_peft(case, tmp_path):
    import peft
    import torch
    import transformers

    ref = dict(np.load(PEFT / case / "reference.npz"))
    model = fresh(case)
    rng = np.random.default_rng(1)
    for p in model.parameters():  # a trained-looking adapter
        if p.requires_grad:
            p.data = (p.data + 0.5 * rng.standard_normal(p.shape)).astype(np.float32)
    model.eval()
    ours = forward(model, ref)
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    auto = {"CAUSAL_LM": transformers.AutoModelForCausalLM, "SEQ_2_SEQ_LM": transformers.AutoModelForSeq2SeqLM,
            "SEQ_CLS": transformers.AutoModelForSequenceClassification}[cfg["task_type"]]
    base = auto.from_pretrained(cfg["base_model_name_or_path"], attn_implementation="eager").eval()
    theirs_model = peft.PeftModel.from_pretrained(base, tmp_path).eval()
    kw = {k: torch.tensor(ref[k]) for k in ("input_ids", "attention_mask", "decoder_input_ids") if k in ref}
    with torch.no_grad():
        theirs = theirs_model(**kw).logits.numpy()
    if ours.ndim == 3 and "decoder_input_ids" not in ref:
        N = ours.shape[1] - ref["attention_mask"].shape[1]
        real = np.concatenate([np.ones((len(ours), N), bool), ref["attention_mask"].astype(bool)], 1)
        ours, theirs = ours[real], theirs[real]
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("config", [PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
                                    PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)],
                         ids=["prompt_tuning", "prefix_tuning"])
def test_opt_generates_with_the_cache(config):
    """PEFT's OPT + prompt tuning + generate() crashes with the key/value cache on; here cache = no cache."""
    model = get_peft_model(_auto_for_task("CAUSAL_LM").from_pretrained(MODELS / "opt"), config)
    ids, mask = np.array([[20, 299, 433, 296, 10], [1, 1, 357, 172, 23]]), np.array([[1] * 5, [0, 0, 1, 1, 1]])
    cached = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6).numpy()
    uncached = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, use_cache=False).numpy()
    np.testing.assert_array_equal(cached, uncached)
    assert cached.shape == (2, 11) and (cached[:, :5] == ids).all()


@pytest.mark.parity
def test_bert_prefix_tuning_matches_peft():
    """PEFT's prefix on transformers' BERT gives our logits. PEFT 0.21.2 looks for a `past_key_values` argument
    and so refuses BERT under transformers 5.24 (which renamed it `cache`); its own fallback, the backbone
    called with the prefix, then dropout and the classifier, is what is run here."""
    import peft
    import torch
    import transformers

    path = MODELS / "bert"
    theirs = peft.get_peft_model(transformers.AutoModelForSequenceClassification.from_pretrained(
        path, attn_implementation="eager"), peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4)).eval()
    ours = get_peft_model(_auto_for_task("SEQ_CLS").from_pretrained(path),
                          PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4))
    ours.eval()
    ours.prompt_encoder["default"].embedding.weight.data[...] = theirs.prompt_encoder["default"].embedding.weight.detach().numpy()
    for name in ("weight", "bias"):
        getattr(ours.base_model.classifier.modules_to_save["default"], name).data[...] = getattr(
            theirs.base_model.classifier.modules_to_save["default"], name).detach().numpy()
    ids, mask = np.array([[2, 5, 7, 9, 3], [2, 4, 6, 1, 1]]), np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        prefix = theirs.get_prompt(2)
        full_mask = torch.cat([torch.ones(2, 4, dtype=torch.long), torch.tensor(mask)], 1)  # PEFT's forward does this
        out = theirs.base_model.bert(input_ids=torch.tensor(ids), attention_mask=full_mask, past_key_values=prefix)
        want = theirs.base_model.classifier(theirs.base_model.dropout(out[1])).numpy()
    with tp.no_grad():
        got = ours(input_ids=ids, attention_mask=mask).logits.numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
