"""Nothing lost (issue 10): a new run in an old output_dir, killed runs' leftovers, a kill during rotation,
a torn log line, two processes in one folder, non-finite hyper-parameters and weights."""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinypeft import manual_seed, nn
from tinypeft.checkpoint_io import LOCK_NAME, FolderLockedError, folder_lock
from tinypeft.data import Dataset
from tinypeft.models import ModelOutput
from tinypeft.trainer import Trainer, TrainingArguments
from tinypeft.trainer import checkpointing as ckpt
from tinypeft.trainer.reporting import JsonlLog


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x, labels=None):
        from tinypeft import functional as F

        pred = self.linear(x.astype(np.float32)).reshape(-1)
        return ModelOutput(loss=F.mse_loss(pred, labels.astype(np.float32)), logits=pred)


ROWS = [{"x": [i / 8], "labels": 2.0 * i / 8 + 1.0} for i in range(8)]


def trainer(output_dir, **kwargs):
    manual_seed(0)
    args = dict(output_dir=str(output_dir), learning_rate=0.1, per_device_train_batch_size=2, save_steps=2,
                logging_steps=1, disable_tqdm=True)
    args.update(kwargs)
    return Trainer(Regressor(), TrainingArguments(**args), train_dataset=Dataset.from_list(ROWS))


def names(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# -- a new run in an old output_dir ---------------------------------------------------------------------------
def test_a_new_run_refuses_an_output_dir_with_another_runs_checkpoints(tmp_path):
    trainer(tmp_path, max_steps=8).train()  # the old run: checkpoint-2 ... checkpoint-8
    before = names(tmp_path)
    with pytest.raises(ValueError, match="checkpoints of an earlier run.*resume_from_checkpoint=True.*overwrite_output_dir"):
        trainer(tmp_path, max_steps=4, save_total_limit=1).train()
    assert names(tmp_path) == before  # nothing deleted


def test_overwrite_output_dir_replaces_the_old_run_and_keeps_the_new_newest(tmp_path):
    trainer(tmp_path, max_steps=8).train()
    new = trainer(tmp_path, max_steps=4, save_total_limit=1, overwrite_output_dir=True)
    new.train()
    assert [c.name for c in ckpt.sorted_checkpoints(tmp_path)] == ["checkpoint-4"]
    assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint-4"
    assert ckpt.run_id_of(tmp_path / "checkpoint-4") == new.state.run_id


def test_rotation_keeps_the_current_runs_newest_and_leaves_other_runs_alone(tmp_path):
    for step, run in ((38, "old"), (39, "old"), (40, "old"), (1, "new"), (2, "new"), (3, "new")):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / ckpt.TRAINER_STATE_NAME).write_text(json.dumps({"run_id": run}))
    deleted = ckpt.rotate_checkpoints(tmp_path, 1, run_id="new", newest=tmp_path / "checkpoint-3")
    assert [p.name for p in deleted] == ["checkpoint-1", "checkpoint-2"]
    assert names(tmp_path) == ["checkpoint-3", "checkpoint-38", "checkpoint-39", "checkpoint-40"]


def test_resume_true_refuses_to_guess_between_two_runs(tmp_path):
    trainer(tmp_path / "a", max_steps=2).train()
    trainer(tmp_path / "b", max_steps=4).train()
    shutil.copytree(tmp_path / "a" / "checkpoint-2", tmp_path / "b" / "checkpoint-6")  # another run's
    with pytest.raises(ValueError, match="2 different runs"):
        trainer(tmp_path / "b", max_steps=8).train(resume_from_checkpoint=True)


# -- leftovers of killed runs ---------------------------------------------------------------------------------
def test_leftovers_of_killed_runs_are_removed_on_start(tmp_path):
    for name in (".tmp-checkpoint-4-abc123", ".old-checkpoint-2", ".trash-checkpoint-6-0f0f"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "optimizer.safetensors").write_bytes(b"half")
    (tmp_path / ".keep-me").mkdir()  # not ours: left alone
    trainer(tmp_path, max_steps=2).train()
    assert ".keep-me" in names(tmp_path) and "checkpoint-2" in names(tmp_path)
    assert not [n for n in names(tmp_path) if n.startswith((".tmp-", ".old-", ".trash-"))]


def test_a_kill_during_rotation_leaves_no_visible_incomplete_checkpoint(tmp_path, monkeypatch):
    t = trainer(tmp_path, max_steps=6, save_total_limit=1)
    real = shutil.rmtree

    def killed_half_way(path, *args, **kwargs):  # deletes one file, then the process "dies"
        victim = sorted(Path(path).iterdir())[0]
        victim.unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.shutil, "rmtree", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        t.train()
    monkeypatch.setattr(ckpt.shutil, "rmtree", real)
    for c in ckpt.sorted_checkpoints(tmp_path):  # every visible checkpoint is whole
        assert ckpt.is_complete(c), names(c)
    assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint-4"
    trainer(tmp_path, max_steps=6, save_total_limit=1).train(resume_from_checkpoint=True)
    assert not [n for n in names(tmp_path) if n.startswith(".")]


def test_an_incomplete_checkpoint_is_not_resumed_from(tmp_path):
    trainer(tmp_path, max_steps=4).train()
    (tmp_path / "checkpoint-4" / ckpt.OPTIMIZER_NAME).unlink()  # as an older tinypeft's killed rotation left it
    with pytest.warns(UserWarning, match="checkpoint-4 is incomplete"):
        assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint-2"


# -- the JSONL log --------------------------------------------------------------------------------------------
def test_a_torn_last_log_line_does_not_block_resume(tmp_path):
    trainer(tmp_path, max_steps=4, report_to="jsonl").train()
    log = tmp_path / "trainer_log.jsonl"
    with open(log, "a") as f:
        f.write('{"loss": 0.5, "st')  # killed mid-append
    with pytest.warns(UserWarning, match="torn last line"):
        trainer(tmp_path, max_steps=6, report_to="jsonl").train(resume_from_checkpoint=True)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 6


def test_a_bad_line_inside_the_log_is_an_error_naming_it(tmp_path):
    log = JsonlLog(tmp_path)
    log.path.write_text('{"step": 1}\n{oops\n{"step": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        log.truncate_after(1)


# -- two processes, one folder --------------------------------------------------------------------------------
def test_a_folder_held_by_a_live_process_is_refused(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(f"{other.pid}\n")
        with pytest.raises(FolderLockedError, match=f"process {other.pid}"):
            trainer(tmp_path, max_steps=2).train()
        assert ckpt.sorted_checkpoints(tmp_path) == []
    finally:
        other.kill()
        other.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"{dead.pid}\n")
    trainer(tmp_path, max_steps=2).train()
    assert not (tmp_path / LOCK_NAME).exists()  # released when the run ends


def test_the_lock_holds_our_pid_while_held_and_is_reentrant(tmp_path):
    with folder_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().split()[0] == str(os.getpid())
        with folder_lock(tmp_path):
            pass
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_peft_save_pretrained_takes_the_lock(tmp_path):
    from tinypeft.models import AutoModelForCausalLM
    from tinypeft.peft import LoraConfig, get_peft_model

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(Path(__file__).parent / "fixtures" / "models" / "gpt2"),
                           LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tmp_path.joinpath(LOCK_NAME).write_text(f"{other.pid}\n")
        with pytest.raises(FolderLockedError):
            model.save_pretrained(tmp_path)
        assert not (tmp_path / "adapter_model.safetensors").exists()
    finally:
        other.kill()
        other.wait()


# -- non-finite numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [("learning_rate", math.inf), ("learning_rate", math.nan),
                                          ("max_grad_norm", math.nan), ("max_grad_norm", math.inf),
                                          ("weight_decay", math.nan), ("num_train_epochs", math.inf),
                                          ("adam_epsilon", math.nan), ("logging_steps", math.nan)])
def test_non_finite_training_arguments_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        TrainingArguments("out", **{field: value})


@pytest.mark.parametrize("field, value", [("lora_alpha", math.inf), ("lora_alpha", math.nan),
                                          ("lora_dropout", 1.0), ("lora_dropout", -0.1), ("lora_dropout", math.nan),
                                          ("r", 2.5), ("r", True)])
def test_non_finite_or_out_of_range_lora_fields_are_refused(field, value):
    from tinypeft.peft import LoraConfig

    with pytest.raises(ValueError, match=field):
        LoraConfig(**{field: value})


def test_non_finite_adapter_weights_are_never_saved(tmp_path):
    from tinypeft.models import AutoModelForCausalLM
    from tinypeft.peft import LoraConfig, get_peft_model

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(Path(__file__).parent / "fixtures" / "models" / "gpt2"),
                           LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    name, param = next((n, p) for n, p in model.named_parameters() if "lora_B" in n)
    param.data[0, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        model.save_pretrained(tmp_path)
    assert not (tmp_path / "adapter_model.safetensors").exists()


def test_a_reader_never_pairs_one_saves_config_with_anothers_weights(tmp_path, monkeypatch):
    """A save lands between the reader's read of adapter_config.json (r=4) and of the weights (r=2): the
    reader sees the files change and reads again, getting the new save whole."""
    from tinypeft.models import AutoModelForCausalLM
    from tinypeft.peft import LoraConfig, PeftModel, get_peft_model
    from tinypeft.peft import peft_model as pm

    gpt2 = Path(__file__).parent / "fixtures" / "models" / "gpt2"
    adapter = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "peft" / "lora_gpt2", tmp_path / "ad"))
    other = tmp_path / "other"
    get_peft_model(AutoModelForCausalLM.from_pretrained(gpt2),
                   LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True)).save_pretrained(other)
    real_load, calls = pm.load_file, []

    def a_save_lands_first(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:  # another process saves, file by file, between our two reads
            for name in ("adapter_model.safetensors", "adapter_config.json"):
                shutil.copyfile(other / name, adapter / f".{name}.tmp")
                os.replace(adapter / f".{name}.tmp", adapter / name)
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(pm, "load_file", a_save_lands_first)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(gpt2), adapter)
    assert len(calls) == 2 and model.peft_config["default"].r == 2
    a = dict(model.named_parameters())["base_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight"]
    assert a.shape == (2, 32)


def test_a_reader_waits_for_a_live_writer_then_gives_up_clearly(tmp_path):
    from tinypeft.checkpoint_io import consistent_read

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(f"{other.pid}\n")
        with pytest.raises(FolderLockedError, match="kept changing"):
            consistent_read(tmp_path, [tmp_path / "x"], lambda: 1, attempts=3, pause=0.01)
    finally:
        other.kill()
        other.wait()
    assert consistent_read(tmp_path, [tmp_path / "x"], lambda: 1, attempts=3, pause=0.01) == 1  # dead owner
