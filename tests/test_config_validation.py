"""Configs are checked when they are loaded (issue 10): a field that would build a broken model is a
ValueError naming the field and the file, not a model with no layers or a failure at the first forward."""
import json
import shutil
from pathlib import Path

import pytest

from tinypeft.cli import main
from tinypeft.models import AutoConfig, AutoModelForCausalLM
from tinypeft.models.gpt2 import GPT2Config
from tinypeft.models.llama import LlamaConfig

FIXTURES = Path(__file__).parent / "fixtures"


def with_config(tmp_path, model, **changes):
    folder = Path(shutil.copytree(FIXTURES / "models" / model, tmp_path / model))
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("model, changes, words", [
    ("gpt2", {"n_layer": -1}, ["n_layer=-1", "positive whole number"]),
    ("gpt2", {"n_layer": 0}, ["n_layer=0"]),
    ("gpt2", {"n_head": 5}, ["n_embd=32 is not divisible by n_head=5"]),
    ("gpt2", {"n_embd": "32"}, ["n_embd='32'"]),
    ("gpt2", {"vocab_size": 1.5}, ["vocab_size=1.5"]),
    ("gpt2", {"save_pretrained": 1}, ["'save_pretrained' would replace"]),
    ("gpt2", {"to_dict": {}}, ["'to_dict' would replace"]),
    ("gpt2", {"resid_pdrop": 1.0}, ["resid_pdrop=1.0", "[0, 1)"]),
    ("gpt2", {"layer_norm_epsilon": -1e-5}, ["layer_norm_epsilon"]),
    ("llama", {"num_key_value_heads": 3}, ["not divisible by num_key_value_heads=3"]),
    ("opt", {"num_hidden_layers": -2}, ["num_hidden_layers=-2"]),
    ("bert", {"num_attention_heads": 0}, ["num_attention_heads=0"]),
    ("t5", {"d_kv": -1}, ["d_kv=-1"]),
])
def test_bad_config_fields_are_refused_at_load(tmp_path, model, changes, words):
    folder = with_config(tmp_path, model, **changes)
    with pytest.raises(ValueError) as e:
        AutoConfig.from_pretrained(folder)
    for w in words + ["config.json"]:
        assert w in str(e.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\"a string\"", "\xff\xfe"])
def test_malformed_config_json_is_a_value_error(tmp_path, text):
    folder = Path(shutil.copytree(FIXTURES / "models" / "gpt2", tmp_path / "m"))
    (folder / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match="config.json"):
        AutoModelForCausalLM.from_pretrained(folder)


def test_valid_configs_still_load():
    assert GPT2Config(n_embd=48, n_head=3).n_embd == 48
    assert LlamaConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=2).num_key_value_heads == 2


@pytest.mark.parametrize("architectures", [["GPT2Config"], ["load_checkpoint"], ["PreTrainedModel"], ["nn"]])
def test_info_looks_architectures_up_in_a_table(capsys, tmp_path, architectures):
    """Not any module-level name of gpt2.py: a name outside the table means the base model."""
    folder = with_config(tmp_path, "gpt2", architectures=architectures)
    code = main(["info", "--model", str(folder)])
    out = capsys.readouterr().out
    assert code == 0 and "class: GPT2Model" in out


def test_info_uses_a_listed_architecture(capsys, tmp_path):
    folder = with_config(tmp_path, "gpt2", architectures=["GPT2ForSequenceClassification"])
    assert main(["info", "--model", str(folder)]) == 0
    assert "class: GPT2ForSequenceClassification" in capsys.readouterr().out
