"""The CLI's contract (issue 10): a user error exits 2 with one error line naming the problem and the fix,
never a traceback; and no command overwrites what it reads (a merge into its own base model)."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from cli_helpers import run  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
GPT2, OPT = FIXTURES / "models" / "gpt2", FIXTURES / "models" / "opt"
LORA_GPT2 = FIXTURES / "peft" / "lora_gpt2"


def assert_usage_error(code, err, *words):
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err  # one line names the problem (after argparse's usage line)
    for w in words:
        assert w in errors[0], errors[0]


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir()) if p.is_file()}


@pytest.fixture
def gpt2_copy(tmp_path):
    return Path(shutil.copytree(GPT2, tmp_path / "gpt2"))


@pytest.fixture
def adapter_copy(tmp_path):
    return Path(shutil.copytree(LORA_GPT2, tmp_path / "adapter"))


@pytest.fixture
def lm_data(tmp_path):
    path = tmp_path / "lm.jsonl"
    path.write_text("".join(json.dumps({"text": f"one two three {i}"}) + "\n" for i in range(8)))
    return path


# ----------------------------------------------------------------------------- nothing read is overwritten

@pytest.mark.parametrize("where, how", [("model", "is the model"), ("adapter", "is the adapter"),
                                        ("inside_model", "is inside the model"),
                                        ("parent_of_adapter", "contains the")])
def test_merge_refuses_an_output_that_overlaps_an_input(capsys, tmp_path, gpt2_copy, adapter_copy, where, how):
    output = {"model": gpt2_copy, "adapter": adapter_copy, "inside_model": gpt2_copy / "merged",
              "parent_of_adapter": tmp_path}[where]
    before = digest(gpt2_copy), digest(adapter_copy)
    code, _, err = run(capsys, "merge", "--model", gpt2_copy, "--adapter", adapter_copy, "--output", output)
    assert_usage_error(code, err, "--output", how, "choose a new folder")
    assert (digest(gpt2_copy), digest(adapter_copy)) == before
    assert not (gpt2_copy / "merged").exists()


def test_merge_refuses_an_output_that_is_a_file(capsys, tmp_path, adapter_copy):
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "merge", "--model", GPT2, "--adapter", adapter_copy, "--output", tmp_path / "file")
    assert_usage_error(code, err, "--output", "existing file")


def test_train_refuses_the_model_folder_as_output(capsys, gpt2_copy, lm_data):
    before = digest(gpt2_copy)
    code, _, err = run(capsys, "train", gpt2_copy, "--data", lm_data, "--max-steps", 1, "--output-dir", gpt2_copy,
                       "--no-progress")
    assert_usage_error(code, err, "--output-dir", "is the model")
    assert digest(gpt2_copy) == before


def test_train_refuses_an_output_dir_that_is_a_file(capsys, tmp_path, lm_data):
    (tmp_path / "f").write_text("x")
    code, _, err = run(capsys, "train", GPT2, "--data", lm_data, "--output-dir", tmp_path / "f")
    assert_usage_error(code, err, "--output-dir", "existing file")


# ----------------------------------------------------------------------------- non-finite and out-of-range numbers

@pytest.mark.parametrize("flag, value, words", [
    ("--learning-rate", "inf", ["--learning-rate", "finite"]),
    ("--learning-rate", "nan", ["--learning-rate", "finite"]),
    ("--lora-alpha", "inf", ["--lora-alpha", "finite"]),
    ("--lora-dropout", "1", ["--lora-dropout", "[0, 1)"]),
    ("--lora-dropout", "nan", ["--lora-dropout", "finite"]),
    ("--seed", "-1", ["--seed", ">= 0"]),
    ("--seed", str(2 ** 32), ["--seed", "2**32"]),
    ("--epochs", "0", ["--epochs", "> 0"]),
    ("--max-length", "100000", ["--max-length", "64 positions"]),
    ("--target-modules", "no_such_module", ["--target-modules", "no_such_module"]),
])
def test_train_bad_numbers_and_options_are_usage_errors(capsys, tmp_path, lm_data, flag, value, words):
    out = tmp_path / "out"
    code, _, err = run(capsys, "train", GPT2, "--data", lm_data, "--max-steps", 1, "--output-dir", out,
                       "--no-progress", flag, value)
    assert_usage_error(code, err, *words)
    assert not (out / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("extra, words", [
    (["--top-k", "-5"], ["--top-k", ">= 0"]),
    (["--do-sample", "--temperature", "0"], ["--temperature", "greedy"]),
    (["--max-new-tokens", "1000"], ["--max-new-tokens", "64 positions"]),
    (["--prompt", "word " * 100], ["--max-new-tokens", "positions", "shorter prompt"]),
    (["--prompt", ""], ["--prompt", "empty"]),
    (["--seed", "-1"], ["--seed"]),
    (["--tokenizer", str(FIXTURES / "models" / "bert")], ["--tokenizer", "no tokenizer.json"]),
    (["--adapter", str(FIXTURES / "peft" / "lora_opt")], ["--adapter", "does not fit"]),
])
def test_generate_bad_arguments_are_usage_errors(capsys, extra, words):
    code, _, err = run(capsys, "generate", "--model", GPT2, "--prompt", "hello", *extra)
    assert_usage_error(code, err, *words)


def test_train_tokenizer_folder_without_tokenizer_json_is_not_silently_replaced(capsys, tmp_path, lm_data):
    empty = tmp_path / "tok"
    empty.mkdir()
    code, _, err = run(capsys, "train", GPT2, "--data", lm_data, "--tokenizer", empty, "--output-dir", tmp_path / "o")
    assert_usage_error(code, err, "--tokenizer", "no tokenizer.json")


def test_adapter_of_another_architecture_is_a_usage_error_in_merge(capsys, tmp_path):
    code, _, err = run(capsys, "merge", "--model", OPT, "--adapter", LORA_GPT2, "--output", tmp_path / "m")
    assert_usage_error(code, err, "--adapter", "does not fit")


def test_library_errors_are_one_line_without_a_traceback(capsys, tmp_path, gpt2_copy):
    config = json.loads((gpt2_copy / "config.json").read_text())
    config["n_layer"] = -1
    (gpt2_copy / "config.json").write_text(json.dumps(config))
    code, _, err = run(capsys, "info", "--model", gpt2_copy)
    assert_usage_error(code, err, "n_layer")


def test_demo_refuses_to_write_into_its_model_folder(capsys, gpt2_copy):
    code, _, err = run(capsys, "demo", "--model", gpt2_copy, "--output-dir", gpt2_copy)
    assert_usage_error(code, err, "--output-dir", "is the model")


def test_a_config_json_that_is_not_an_object_is_one_line(capsys, tmp_path, gpt2_copy, lm_data):
    (gpt2_copy / "config.json").write_text("[1, 2]")
    code, _, err = run(capsys, "train", gpt2_copy, "--data", lm_data, "--output-dir", tmp_path / "o")
    assert_usage_error(code, err, "config.json", "not an object")


def test_virtual_tokens_count_against_the_context_in_train(capsys, tmp_path, lm_data):
    """Before, positions past the table wrapped silently (embedding row -1); then they raised IndexError."""
    code, _, err = run(capsys, "train", GPT2, "--method", "prompt_tuning", "--num-virtual-tokens", 10,
                       "--max-length", 60, "--data", lm_data, "--output-dir", tmp_path / "o")
    assert_usage_error(code, err, "--max-length", "60 + 10 virtual tokens", "--max-length 54")
    code, _, err = run(capsys, "train", GPT2, "--method", "prompt_tuning", "--num-virtual-tokens", 100,
                       "--data", lm_data, "--output-dir", tmp_path / "o")
    assert_usage_error(code, err, "--num-virtual-tokens", "fewer than 64")


def test_virtual_tokens_count_against_the_context_in_generate(capsys):
    code, _, err = run(capsys, "generate", "--model", GPT2, "--adapter", FIXTURES / "peft" / "prompt_tuning_gpt2",
                       "--prompt", "hello", "--max-new-tokens", 60)
    assert_usage_error(code, err, "--max-new-tokens", "4 virtual tokens")
