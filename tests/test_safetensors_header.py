"""The safetensors header is validated as the safetensors library does (issue 10): offsets in order,
contiguous, inside the file, sizes = dtype x shape; a shard index cannot point outside the model folder;
a file is read through one open handle; integer bytes are never loaded as float weights."""
import builtins
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from tinypeft import checkpoint_io
from tinypeft.checkpoint_io import SafetensorsError, load_checkpoint, load_file

FIXTURES = Path(__file__).parent / "fixtures"


def write_raw(path, header, data):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def two_tensors(a=(0, 8), b=(8, 16), data=bytes(16), dtype="F32"):
    return {"a": {"dtype": dtype, "shape": [2], "data_offsets": list(a)},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": list(b)}}, data


def test_a_valid_hand_made_file_loads(tmp_path):
    header, data = two_tensors(data=np.arange(4, dtype="<f4").tobytes())
    out = load_file(write_raw(tmp_path / "ok.safetensors", header, data))
    assert out["a"].tolist() == [0, 1] and out["b"].tolist() == [2, 3]


@pytest.mark.parametrize("a, b, data, words", [
    ((-8, 0), (0, 8), bytes(8), "data_offsets"),            # negative
    ((0, 8), (0, 8), bytes(8), "overlaps"),                  # both tensors on the same bytes
    ((0, 8), (4, 12), bytes(12), "overlaps"),                # b starts inside a
    ((0, 8), (8, 20), bytes(20), "do not hold"),             # b's span is not its size
    ((0, 8), (12, 20), bytes(20), "gap"),                    # 4 bytes nobody owns
    ((0, 8), (8, 16), bytes(24), "file has"),                # trailing bytes
    ((0, 8), (8, 16), bytes(12), "header length|file has"),  # truncated
    ((8, 0), (8, 16), bytes(16), "data_offsets"),            # end before begin
])
def test_bad_offsets_are_refused(tmp_path, a, b, data, words):
    header, _ = two_tensors(a, b)
    with pytest.raises(SafetensorsError, match=words):
        load_file(write_raw(tmp_path / "bad.safetensors", header, data))


@pytest.mark.parametrize("entry", [
    {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]},
    {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]},
    {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]},
    {"dtype": "X9", "shape": [2], "data_offsets": [0, 8]},
    {"dtype": "F32", "shape": [2], "data_offsets": [0]},
    {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]},
    {"dtype": "F32", "shape": [2]},
    "not a dict",
])
def test_malformed_entries_are_refused(tmp_path, entry):
    with pytest.raises(SafetensorsError):
        load_file(write_raw(tmp_path / "bad.safetensors", {"a": entry}, bytes(8)))


def test_metadata_must_be_strings(tmp_path):
    header = {"__metadata__": {"format": 1}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    with pytest.raises(SafetensorsError, match="__metadata__"):
        load_file(write_raw(tmp_path / "bad.safetensors", header, bytes(8)))


def test_float_bytes_labelled_i32_are_refused_as_model_weights(tmp_path):
    from tinypeft.models import AutoModelForCausalLM

    folder = Path(shutil.copytree(FIXTURES / "models" / "gpt2", tmp_path / "gpt2"))
    raw = (folder / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    header[name]["dtype"] = "I32"  # same size: only the label is wrong
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    text = text.ljust(n)  # padded with spaces to the old length, so the offsets still hold
    (folder / "model.safetensors").write_bytes(raw[:8] + text + raw[8 + n:])
    assert load_file(folder / "model.safetensors")[name].dtype == np.int32  # a valid file ...
    with pytest.raises(ValueError, match=f"{name} is stored as int32"):  # ... but not this model's weights
        AutoModelForCausalLM.from_pretrained(folder)


def test_int_bytes_are_refused_as_adapter_weights(tmp_path):
    from tinypeft.models import AutoModelForCausalLM
    from tinypeft.peft import PeftModel

    adapter = Path(shutil.copytree(FIXTURES / "peft" / "lora_gpt2", tmp_path / "ad"))
    tensors = load_file(adapter / "adapter_model.safetensors")
    checkpoint_io.save_file_atomic({k: v.view(np.int32) for k, v in tensors.items()},
                                   adapter / "adapter_model.safetensors")
    base = AutoModelForCausalLM.from_pretrained(FIXTURES / "models" / "gpt2")
    with pytest.raises(ValueError, match="int32"):
        PeftModel.from_pretrained(base, adapter)


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "sub/../../x.safetensors"])
def test_a_shard_index_pointing_outside_the_model_folder_is_refused(tmp_path, shard):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "outside.safetensors").write_bytes(b"")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard}}))
    with pytest.raises(ValueError, match="outside the model folder"):
        load_checkpoint(folder)


def test_a_file_is_read_through_one_open_handle(tmp_path, monkeypatch):
    """Header and data from one open: a writer's os.replace between two opens gave a reshape error."""
    header, data = two_tensors(data=np.arange(4, dtype="<f4").tobytes())
    path = write_raw(tmp_path / "one.safetensors", header, data)
    opened, real_open = [], builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file) == str(path):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    load_file(path)
    assert len(opened) == 1
