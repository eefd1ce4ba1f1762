"""What a training run prints (issue 16, friction 5): transformers' log dicts every logging_steps with or
without the progress bar, the eval dict at each evaluation, the epoch on the bar."""
import ast
from pathlib import Path

import pytest

from tinypeft.data import DataCollatorForLanguageModeling, Dataset
from tinypeft.models import AutoModelForCausalLM
from tinypeft.tokenization import AutoTokenizer
from tinypeft.trainer import Trainer, TrainingArguments

GPT2 = Path(__file__).parent / "fixtures" / "models" / "gpt2"
TEXTS = ["the cat sat on the mat", "a dog ran in the park", "hello world again", "the sun is bright today"]


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(GPT2)


def trainer(tok, tmp_path, **kwargs):
    data = Dataset.from_list([{"text": t} for t in TEXTS]).map(lambda ex: tok(ex["text"]), remove_columns=["text"])
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, save_strategy="no",
                             learning_rate=1e-2, **kwargs)
    return Trainer(AutoModelForCausalLM.from_pretrained(GPT2), args, train_dataset=data, eval_dataset=data,
                   data_collator=DataCollatorForLanguageModeling(tok, mlm=False))


def printed_dicts(text):
    return [ast.literal_eval(line) for line in text.splitlines() if line.startswith("{")]


def test_log_lines_every_logging_steps_without_the_bar(tok, tmp_path, capsys):
    trainer(tok, tmp_path, max_steps=4, logging_steps=2, disable_tqdm=True).train()
    logs = printed_dicts(capsys.readouterr().out)
    steps = [d for d in logs if "loss" in d]
    assert len(steps) == 2
    for d in steps:
        assert list(d) == ["loss", "grad_norm", "learning_rate", "epoch"]
        assert float(d["loss"]) > 0 and float(d["learning_rate"]) > 0
    assert [float(d["epoch"]) for d in steps] == [1.0, 2.0]  # 2 steps an epoch
    assert "train_loss" in logs[-1]


def test_eval_dicts_at_each_evaluation_and_the_epoch_on_the_bar(tok, tmp_path, capsys):
    trainer(tok, tmp_path, num_train_epochs=2, logging_steps=1, eval_strategy="epoch", disable_tqdm=False).train()
    captured = capsys.readouterr()
    evals = [d for d in printed_dicts(captured.out) if "eval_loss" in d]
    assert len(evals) == 2 and [float(d["epoch"]) for d in evals] == [1.0, 2.0]
    assert len([d for d in printed_dicts(captured.out) if "loss" in d]) == 4
    assert "epoch 2/2" in captured.err  # the bar's description
