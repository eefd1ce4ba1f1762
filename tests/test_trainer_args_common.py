"""The transformers arguments users pass (issue 16): each does what it does in transformers or is refused
with a reason; model.dtype / model.device; print(DatasetDict)."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinypeft.data import DataCollatorForLanguageModeling, Dataset, DatasetDict
from tinypeft.models import AutoModelForCausalLM
from tinypeft.optim import SGD, AdamW
from tinypeft.tokenization import AutoTokenizer
from tinypeft.trainer import Trainer, TrainingArguments, set_seed

GPT2 = Path(__file__).parent / "fixtures" / "models" / "gpt2"


def lm_trainer(tmp_path, **kwargs):
    tok = AutoTokenizer.from_pretrained(GPT2)
    data = Dataset.from_list([{"text": t} for t in ("one two", "three four five", "six")]).map(
        lambda ex: tok(ex["text"]), remove_columns=["text"])
    args = dict(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2, save_strategy="no",
                disable_tqdm=True, learning_rate=0.1)
    args = TrainingArguments(**{**args, **kwargs})
    return Trainer(AutoModelForCausalLM.from_pretrained(GPT2), args, train_dataset=data,
                   data_collator=DataCollatorForLanguageModeling(tok, mlm=False))


@pytest.mark.parametrize("optim, cls", [("adamw_torch", AdamW), ("adamw_hf", AdamW), ("sgd", SGD)])
def test_optim_names(tmp_path, optim, cls):
    trainer = lm_trainer(tmp_path, optim=optim)
    before = {n: p.data.copy() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert type(trainer.optimizer) is cls
    assert any(not np.array_equal(before[n], p.data) for n, p in trainer.model.named_parameters())


def test_sgd_step_is_lr_times_the_gradient(tmp_path):
    trainer = lm_trainer(tmp_path, optim="sgd", max_grad_norm=0.0, lr_scheduler_type="constant", max_steps=1)
    model = trainer.model
    batch = trainer._collate(trainer.train_dataset, np.random.default_rng([42, 0]).permutation(3)[:2])
    model.train()
    set_seed(42)  # as train() does first: the same dropout masks
    trainer.compute_loss(model, batch).backward()
    expected = {n: p.data - 0.1 * p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    trainer.train()
    for n, p in model.named_parameters():
        if n in expected:
            np.testing.assert_allclose(p.data, expected[n], rtol=1e-4, atol=1e-6)


def test_an_unknown_optim_is_refused():
    with pytest.raises(ValueError, match="optim='adafactor' is not supported"):
        TrainingArguments(optim="adafactor")


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_mixed_precision_is_refused_with_what_to_use(name):
    with pytest.raises(ValueError, match=f"{name}=True: tinypeft trains in float32"):
        TrainingArguments(**{name: True})


def test_dataloader_workers_refused_use_cpu_accepted():
    with pytest.raises(ValueError, match="use dataloader_num_workers=0"):
        TrainingArguments(dataloader_num_workers=2)
    assert TrainingArguments(use_cpu=True, dataloader_num_workers=0).use_cpu


def test_logging_dir_holds_the_jsonl_log(tmp_path):
    trainer = lm_trainer(tmp_path, report_to="jsonl", logging_steps=1, logging_dir=str(tmp_path / "logs"))
    trainer.train()
    lines = (tmp_path / "logs" / "trainer_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines if "loss" in json.loads(line)] == [1, 2]
    assert not (tmp_path / "out" / "trainer_log.jsonl").exists()


def test_model_dtype_and_device():
    model = AutoModelForCausalLM.from_pretrained(GPT2)
    assert model.dtype == np.float32 and model.device == "cpu"
    assert model.to("float64").dtype == np.float64


def test_print_dataset_dict_shows_splits_and_sizes():
    dd = DatasetDict({"train": Dataset.from_list([{"text": "a", "label": 0}] * 3),
                      "test": Dataset.from_list([{"text": "b", "label": 1}])})
    text = repr(dd)
    assert text.startswith("DatasetDict({") and "train: Dataset({" in text and "test: Dataset({" in text
    assert "num_rows: 3" in text and "num_rows: 1" in text and "features: ['text', 'label']" in text
