"""Checks for tutorials/05_pretrained_minilm.md's exercises (see checking.py for how checks behave)."""
import os
import tempfile

import numpy as np

from .checking import _array, _close, _exercise
from .files import path as course_file

MINILM_REFERENCE = "tests/fixtures/reference/minilm_embeddings.npz"


@_exercise
def check_read_safetensors_header(read_safetensors_header):
    """(header, data_start) must locate every tensor of files written by the safetensors library, and MiniLM's."""
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(5)
    files = [
        ({"a": rng.standard_normal((3, 4)).astype(np.float32), "b": np.arange(5, dtype=np.int64)}, {"format": "pt"}),
        ({"only": rng.standard_normal(7).astype(np.float64)}, None),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for k, (tensors, metadata) in enumerate(files):
            filename = os.path.join(tmp, f"t{k}.safetensors")
            save_file(tensors, filename, metadata=metadata)
            got = read_safetensors_header(filename)
            assert got is not None and len(got) == 2, "return the pair (header, data_start)"
            header, data_start = got
            assert isinstance(header, dict), f"header should be a dict, got {type(header).__name__}"
            if metadata:
                assert header.get("__metadata__") == metadata, "keep __metadata__ in the header"
            expected = load_file(filename)  # the library's reading
            assert set(header) - {"__metadata__"} == set(expected), f"tensor names {sorted(header)}"
            raw = open(filename, "rb").read()
            for name, want in expected.items():
                begin, end = header[name]["data_offsets"]
                arr = np.frombuffer(raw[data_start + begin : data_start + end], dtype=want.dtype).reshape(want.shape)
                assert np.array_equal(arr, want), (
                    f"tensor {name!r} read at data_start + offsets is wrong: is data_start the byte after the header "
                    "(8 bytes of length + the header itself)?"
                )
    from tinypeft.checkpoint_io import read_header
    from tinypeft.hub import fetch_minilm

    minilm = fetch_minilm() / "model.safetensors"
    assert tuple(read_safetensors_header(minilm)) == read_header(minilm), "MiniLM's header differs from tinypeft's reading"


def _bf16_reference(bits):
    """bfloat16 bit patterns to values by the definition: (-1)^s * 1.m * 2^(e - 127), subnormals, inf, NaN."""
    bits = bits.astype(np.int64)
    sign = np.where(bits >> 15, -1.0, 1.0)
    e, m = (bits >> 7) & 0xFF, bits & 0x7F
    with np.errstate(over="ignore"):
        value = np.where(e == 0, m / 128 * 2.0**-126, (1 + m / 128) * 2.0 ** (e - 127))
    value = np.where(e == 255, np.where(m == 0, np.inf, np.nan), value)
    return sign * value


@_exercise
def check_bf16_to_float32(bf16_to_float32):
    """Every one of the 65,536 bfloat16 bit patterns, against the definition of the format."""
    named = {0x3F80: 1.0, 0xC020: -2.5, 0x4049: 3.140625, 0x7F80: np.inf, 0xFF80: -np.inf, 0x0001: 2.0**-133}
    for b, want in named.items():
        got = bf16_to_float32(np.array([b], dtype=np.uint16))
        assert got is not None, "bf16_to_float32 returned None; return the float32 array"
        got = _array(got, f"bf16_to_float32 of 0x{b:04x}").reshape(-1)
        assert got.shape == (1,), f"0x{b:04x}: one bit pattern in gave {got.size} values out"
        assert got[0] == want, f"0x{b:04x}: got {got[0]!r}, expected {want!r}"
    bits = np.arange(1 << 16, dtype=np.uint16).reshape(256, 256)
    got = _array(bf16_to_float32(bits.copy()), "bf16_to_float32")
    assert got.dtype == np.float32, f"dtype {got.dtype}, expected float32"
    assert got.shape == bits.shape, f"shape {got.shape}, expected {bits.shape}"
    want = _bf16_reference(bits)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), "NaN patterns (exponent all ones, mantissa not zero) must give NaN"
    bad = got[~nan] != want[~nan]
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise AssertionError(f"0x{bits[~nan][i]:04x}: got {got[~nan][i]!r}, expected {want[~nan][i]!r}")
    assert np.array_equal(np.signbit(got), bits >= 0x8000), "the sign bit must be kept (0x8000 is -0.0)"


@_exercise
def check_sentence_embedding(sentence_embedding):
    """Mean pooling + L2 normalisation of MiniLM's token states gives transformers' sentence embeddings."""
    import tinypeft as tp
    from tinypeft.hub import fetch_minilm

    ref = np.load(course_file(MINILM_REFERENCE))
    path = fetch_minilm()
    model = tp.AutoModel.from_pretrained(path)
    batch = {k: ref[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    assert (batch["attention_mask"] == 0).any(), "the reference batch should contain padding"
    with tp.no_grad():
        hidden = model(**batch).last_hidden_state.numpy()  # [8, 12, 384]
    got = sentence_embedding(hidden.copy(), batch["attention_mask"].copy())
    assert got is not None, "sentence_embedding returned None; return the [B, D] array"
    got = _array(got, "sentence_embedding", np.float64)
    assert got.shape == ref["embeddings"].shape, f"shape {got.shape}, expected {ref['embeddings'].shape}"
    _close(np.linalg.norm(got, axis=1), np.ones(len(got)), "the length of each sentence vector", atol=1e-5)
    _close(got, ref["embeddings"], "embeddings vs transformers' (are padding tokens left out of the mean?)",
           rtol=0, atol=2e-5)
