"""Nothing silent (issue 10): inputs that used to give a plausible wrong answer now raise, naming the
problem; the results that were wrong (float16 layer_norm, .to("cpu") cutting the gradient, an unseeded
generator) are right."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft import functional as F
from tinypeft.cli import main
from tinypeft.data import Dataset, load_dataset

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
GPT2, BERT, BPE = FIXTURES / "models" / "gpt2", FIXTURES / "models" / "bert", FIXTURES / "tokenizers" / "bpe"


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


# -- negative and out-of-range ids ----------------------------------------------------------------------------
@pytest.mark.parametrize("target", [[-1], [3], [0, -5], [-101]])
def test_cross_entropy_refuses_targets_outside_the_classes(target):
    logits = tp.tensor(np.zeros((len(target), 3), np.float32))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(logits, np.array(target))


def test_cross_entropy_ignores_only_ignore_index():
    logits = tp.tensor(np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]], np.float32)))
    loss = F.cross_entropy(logits, np.array([0, -100]))
    assert np.isclose(loss.item(), -np.log(0.5))
    with pytest.raises(IndexError):
        F.cross_entropy(logits, np.array([0, -100]), ignore_index=-1)


@pytest.mark.parametrize("ids", [[-1], [4], [[0, 1], [2, -3]]])
def test_embedding_refuses_ids_outside_the_table(ids):
    with pytest.raises(IndexError, match="out of range for 4 rows"):
        F.embedding(np.array(ids), tp.tensor(np.eye(4, dtype=np.float32)))


def test_lm_labels_below_zero_other_than_minus_100_are_refused():
    from tinypeft.models import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(GPT2)
    ids = np.array([[1, 2, 3, 4]])
    model(input_ids=ids, labels=np.array([[1, 2, -100, 4]]))  # fine
    with pytest.raises(IndexError):
        model(input_ids=ids, labels=np.array([[1, 2, -5, 4]]))


@pytest.mark.parametrize("labels, words", [([0, 1, -1, 1], "example 3: label -1 is negative"),
                                           ([0, 1, None, 1], "example 3 has no label"),
                                           (["a", "b", "", "a"], "example 3 has no label")])
def test_seq_cls_labels_that_are_not_classes_are_usage_errors(capsys, tmp_path, labels, words):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": f"t {i}", "label": y}) + "\n" for i, y in enumerate(labels)))
    code, err = run(capsys, "train", BERT, "--tokenizer", BPE, "--data", data, "--output-dir", tmp_path / "o")
    assert code == 2 and words in err and "Traceback" not in err


# -- float16 --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1.0, 300.0, 3000.0])
def test_float16_layer_norm_accumulates_in_float32(scale):
    x = np.random.default_rng(0).normal(0, scale, (4, 64))
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    out = F.layer_norm(tp.tensor(x.astype(np.float16)), (64,))
    assert out.dtype == np.float16
    np.testing.assert_allclose(out.numpy().astype(np.float64), ref, atol=1e-2)  # float16 rounding: ~1e-3


def test_float16_layer_norm_backward_is_finite():
    x = tp.tensor(np.random.default_rng(1).normal(0, 300, (2, 32)).astype(np.float16), requires_grad=True)
    w = tp.tensor(np.ones(32, np.float16), requires_grad=True)
    (F.layer_norm(x, (32,), w) * tp.tensor(np.arange(32, dtype=np.float16))).sum().backward()
    assert np.isfinite(x.grad.numpy()).all() and x.grad.dtype == np.float16


# -- devices --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("move", [lambda t: t.to("cpu"), lambda t: t.cpu()])
def test_moving_to_the_cpu_keeps_the_gradient(move):
    x = tp.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = move(x)
    assert y.requires_grad
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])


# -- data files -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, line", [("text,label\nhello,pos\nragged\n", 3),
                                        ("text,label\nhello,pos\na,b,c\n", 3),
                                        ("text,label\n\"unclosed,pos\n", None)])
def test_a_ragged_csv_row_is_an_error_naming_the_line(tmp_path, text, line):
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"line {line}" if line else "d.csv"):
        Dataset.from_csv(path)


def test_a_ragged_csv_is_a_usage_error_not_a_class_named_none(capsys, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"t {i},{'pos' if i % 2 else 'neg'}\n" for i in range(6)) + "t 7\n")
    code, err = run(capsys, "train", BERT, "--tokenizer", BPE, "--data", path, "--output-dir", tmp_path / "o")
    assert code == 2 and "line 8" in err


@pytest.mark.parametrize("text", ["[1, 2]", "{\"a\": 1}\n[1]\n", "\"text\"\n"])
def test_json_rows_that_are_not_objects_are_value_errors(tmp_path, text):
    path = tmp_path / "d.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        load_dataset("json", data_files=str(path), split="train")


# -- adapters -------------------------------------------------------------------------------------------------
def lora_model():
    from tinypeft.models import AutoModelForCausalLM
    from tinypeft.peft import LoraConfig, get_peft_model

    return get_peft_model, AutoModelForCausalLM.from_pretrained(GPT2), LoraConfig(
        r=2, target_modules=["c_attn"], fan_in_fan_out=True)


@pytest.mark.parametrize("name", ["/tmp/evil", "../evil", "a/b", "a.b", "", ".."])
def test_adapter_names_must_be_plain_names(tmp_path, name):
    get_peft_model, base, config = lora_model()
    with pytest.raises(ValueError, match="not a plain name"):
        get_peft_model(base, config, adapter_name=name)
    model = get_peft_model(base, config)
    with pytest.raises(ValueError, match="not a plain name"):
        model.add_adapter(name, config)
    model.save_pretrained(tmp_path / "save")
    assert sorted(p.name for p in (tmp_path / "save").iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors"]


@pytest.mark.parametrize("field, value", [("r", 2_000_000), ("r", 3)])
def test_an_adapter_config_that_disagrees_with_its_weights_is_refused_before_allocating(tmp_path, field, value):
    from tinypeft.models import AutoModelForCausalLM
    from tinypeft.peft import PeftModel

    adapter = Path(shutil.copytree(FIXTURES / "peft" / "lora_gpt2", tmp_path / "ad"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    config[field] = value
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    base = AutoModelForCausalLM.from_pretrained(GPT2)
    with pytest.raises(ValueError, match=f"rank\\(s\\) \\[4\\] but adapter_config.json says r={value}"):
        PeftModel.from_pretrained(base, adapter)
    assert not any("lora_A" in n for n, _ in base.named_parameters())  # nothing was built


def test_a_prompt_adapter_whose_token_count_disagrees_is_refused(tmp_path):
    from tinypeft.models import AutoModelForCausalLM
    from tinypeft.peft import PeftModel

    adapter = Path(shutil.copytree(FIXTURES / "peft" / "prompt_tuning_gpt2", tmp_path / "ad"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["num_virtual_tokens"] = 1_000_000
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="num_virtual_tokens=1000000"):
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(GPT2), adapter)


# -- the random generator -------------------------------------------------------------------------------------
def test_a_plain_script_is_reproducible_without_manual_seed():
    script = "import tinypeft as tp; print(tp.randn(3).numpy().tolist(), tp.nn.Linear(2, 2).weight.data.tolist())"
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].strip()
    tp.manual_seed(7)
    assert tp.creation.initial_seed() == 7


# -- the same class of mistake, found elsewhere ---------------------------------------------------------------
@pytest.mark.parametrize("index", [[[-1]], [[3]]])
def test_gather_refuses_indices_outside_the_dimension(index):
    x = tp.tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(IndexError, match="out of bounds for dimension 1 with size 3"):
        tp.gather(x, 1, np.array(index * 2))


def test_training_arguments_refuse_a_seed_numpy_cannot_take():
    from tinypeft.trainer import TrainingArguments

    with pytest.raises(ValueError, match="2\\*\\*32"):
        TrainingArguments("out", seed=2 ** 32)
