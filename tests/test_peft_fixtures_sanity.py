"""Sanity checks of the adapters made by tests/fixtures/make_peft_fixtures.py with the real peft library.

The default suite only reads files (no torch, no peft): every case is present, small and well formed. The
parity test reruns the script into a temporary folder and checks it reproduces the committed files.
"""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
import pytest

ROOT = Path(__file__).resolve().parents[1]
PEFT_DIR = ROOT / "tests" / "fixtures" / "peft"
CASES = ["lora_gpt2", "lora_gpt2_all_linear", "lora_opt", "lora_opt_two", "lora_llama", "dora_llama",
         "lora_bert_seqcls", "lora_t5", "lora_mt5", "lora_embedding_gpt2", "ia3_opt", "ia3_t5",
         "prompt_tuning_gpt2", "prompt_tuning_t5", "prompt_tuning_bert_seqcls", "prefix_tuning_gpt2",
         "prefix_tuning_llama", "prefix_tuning_t5", "p_tuning_gpt2", "p_tuning_bert_seqcls",
         "ia3_gpt2", "ia3_llama", "ia3_bert_seqcls", "ia3_mt5", "prompt_tuning_opt", "prompt_tuning_llama",
         "prompt_tuning_mt5", "prefix_tuning_opt", "p_tuning_opt", "p_tuning_llama", "p_tuning_t5"]
PEFT_TYPES = {"lora": "LORA", "dora": "LORA", "ia3": "IA3", "prompt": "PROMPT_TUNING", "prefix": "PREFIX_TUNING",
              "p": "P_TUNING"}


def adapter_dirs(case):
    d = PEFT_DIR / case
    return [d] + sorted(p for p in d.iterdir() if p.is_dir())


def read_header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert len(raw) == 8 + n + max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    return header


def test_total_size_small():
    total = sum(p.stat().st_size for p in PEFT_DIR.rglob("*") if p.is_file())
    assert total < 3 * 2**20, total


@pytest.mark.parametrize("case", CASES)
def test_case_files(case):
    d = PEFT_DIR / case
    assert (d / "reference.npz").is_file() and (d / "keys.json").is_file()
    assert not list(d.rglob("README.md"))
    for a in adapter_dirs(case):
        assert sorted(p.name for p in a.iterdir() if p.is_file()) >= ["adapter_config.json", "adapter_model.safetensors"]
        config = json.loads((a / "adapter_config.json").read_text())
        assert config["peft_type"] == PEFT_TYPES[case.split("_")[0]]
        base = config["base_model_name_or_path"]
        assert base.startswith("tests/fixtures/models/") and (ROOT / base / "config.json").is_file()
        assert config["inference_mode"] is True and config["peft_version"]
        header = read_header(a / "adapter_model.safetensors")
        assert header.pop("__metadata__") == {"format": "pt"}
        assert header and all(v["dtype"] == "F32" for v in header.values())
        assert all(np.prod(v["shape"]) > 0 for v in header.values())
        if config["peft_type"] in ("LORA", "IA3"):
            assert all(k.startswith("base_model.model.") for k in header)
        else:
            assert "prompt_embeddings" in header
        assert all(".default." not in k and ".other." not in k for k in header)   # adapter names removed
    keys = json.loads((d / "keys.json").read_text())
    assert isinstance(keys, list) and len(keys) == len(set(keys)) > 0
    ref = np.load(d / "reference.npz")
    assert ref["input_ids"].shape == ref["attention_mask"].shape
    assert ref["logits"].dtype == np.float32 and np.isfinite(ref["logits"]).all()
    if "gen_output" in ref:
        assert ref["gen_output"].shape[0] == ref["gen_input_ids"].shape[0]


def test_counts():
    counts = json.loads((PEFT_DIR / "counts.json").read_text())
    mt0 = counts["mt0-large"]
    assert mt0["line"] == "trainable params: 2,359,296 || all params: 1,231,940,608 || trainable%: 0.1915"
    assert (mt0["trainable"], mt0["all"]) == (2359296, 1231940608)
    assert sorted(counts["cases"]) == sorted(CASES)
    for c in counts["cases"].values():
        t, a = c["trainable"], c["all"]
        assert c["line"] == f"trainable params: {t:,d} || all params: {a:,d} || trainable%: {100 * t / a:.4f}"


@pytest.mark.parity
def test_script_reproduces_fixtures(tmp_path):
    import peft  # noqa: F401
    script = ROOT / "tests" / "fixtures" / "make_peft_fixtures.py"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, cwd=ROOT, env=env,
                   capture_output=True)
    for name in ["counts.json", "generate_notes.json"]:
        assert json.loads((tmp_path / name).read_text()) == json.loads((PEFT_DIR / name).read_text())
    for case in CASES:
        for a in adapter_dirs(case):
            b = tmp_path / a.relative_to(PEFT_DIR)
            assert json.loads((b / "adapter_config.json").read_text()) == json.loads((a / "adapter_config.json").read_text())
            # same keys, dtypes and shapes; values to 1e-6 relative (prefix tuning saves its projected prefix, a torch
            # matmul whose float32 sums can round differently from one machine or run to the next)
            new_w, old_w = (load_file(str(d / "adapter_model.safetensors")) for d in (b, a))
            assert sorted(new_w) == sorted(old_w)
            for k in old_w:
                assert new_w[k].dtype == old_w[k].dtype and new_w[k].shape == old_w[k].shape, k
                np.testing.assert_allclose(new_w[k], old_w[k], rtol=1e-6, atol=1e-6, err_msg=f"{a}: {k}")
        assert (tmp_path / case / "keys.json").read_text() == (PEFT_DIR / case / "keys.json").read_text()
        new, old = np.load(tmp_path / case / "reference.npz"), np.load(PEFT_DIR / case / "reference.npz")
        assert sorted(new.files) == sorted(old.files)
        for k in old.files:
            if old[k].dtype.kind == "f":
                np.testing.assert_allclose(new[k], old[k], rtol=0, atol=1e-5, err_msg=f"{case}: {k}")
            else:
                assert np.array_equal(new[k], old[k]), f"{case}: {k}"
