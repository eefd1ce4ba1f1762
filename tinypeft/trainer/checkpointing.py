"""Checkpoints: everything needed to continue a run exactly where it stopped.

    output_dir/checkpoint-<step>/
        model.safetensors + config.json    (model.save_pretrained; a PEFT model writes its adapter instead,
                                            and the trainable parameters go to trainable_parameters.safetensors)
        optimizer.safetensors              AdamW's moments, one tensor per "state.<index>.<name>";
                                            the param groups and step counts in its JSON metadata
        scheduler.json                     the schedule's step counter
        rng_state.json                     the random streams (dropout masks are drawn from them)
        trainer_state.json                 global_step, epoch, log_history, best metric

A checkpoint is written into a hidden temporary folder and renamed into place when complete: a crash
half-way (out of disk, Ctrl-C) leaves the previous checkpoints as they were and no half-written one
that resuming would trip over. Rename is atomic within one file system, which output_dir is. Deleting
works the other way round: the folder is first renamed to a hidden name, then removed, so a kill during
rotation never leaves a visible checkpoint with files missing. Hidden leftovers of killed runs
(.tmp-*, .old-*, .trash-*) are removed when the next run starts (cleanup_leftovers).

trainer_state.json carries the run's `run_id`: rotation deletes only the current run's checkpoints, and
a new run does not start in a folder that holds another run's checkpoints (Trainer.train refuses).
"""
import json
import os
import re
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import numpy as np

from ..checkpoint_io import load_file, load_file_with_metadata, save_file_atomic
from ..tensor import Tensor, as_numpy
from .trainer_utils import PREFIX_CHECKPOINT_DIR

TRAINER_STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.safetensors"
SCHEDULER_NAME = "scheduler.json"
RNG_STATE_NAME = "rng_state.json"
MODEL_NAME = "model.safetensors"
TRAINABLE_NAME = "trainable_parameters.safetensors"

_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
_LEFTOVER_RE = re.compile(rf"^\.(tmp|old|trash)-{PREFIX_CHECKPOINT_DIR}-\d+")
REQUIRED_FILES = (TRAINER_STATE_NAME, OPTIMIZER_NAME, SCHEDULER_NAME, RNG_STATE_NAME)


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


# -- the model --------------------------------------------------------------------------------------------
def save_model(model, directory):
    """model.save_pretrained when it has one, else its state_dict; plus the trainable parameters by their
    module names when save_pretrained wrote no full model.safetensors (an adapter), so resuming can put
    them back without knowing the adapter's file format."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(directory)
    else:
        save_file_atomic(_arrays(model.state_dict()), directory / MODEL_NAME)
    if not (directory / MODEL_NAME).exists():
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        save_file_atomic(_arrays(trainable), directory / TRAINABLE_NAME)


def load_model(model, directory):
    """Put a checkpoint's weights back into `model` (built the same way as the one that was saved)."""
    directory = Path(directory)
    if (directory / TRAINABLE_NAME).exists():
        saved = load_file(directory / TRAINABLE_NAME)
    elif (directory / MODEL_NAME).exists():
        saved = load_file(directory / MODEL_NAME)
    else:
        raise FileNotFoundError(f"{directory} holds no {MODEL_NAME} or {TRAINABLE_NAME}; is it a checkpoint?")
    own = model.state_dict(keep_vars=True)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and n not in saved]
    if missing:
        raise ValueError(f"checkpoint {directory} lacks trainable parameters {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''}; was it saved from a different model?")
    for name, array in saved.items():
        if name in own:
            if tuple(own[name].shape) != tuple(array.shape):
                raise ValueError(f"checkpoint {directory}: {name} has shape {array.shape}, "
                                 f"the model {tuple(own[name].shape)}.")
            if array.dtype.kind != "f":
                raise ValueError(f"checkpoint {directory}: {name} is stored as {array.dtype}, not as floats.")
            own[name].data[...] = array


def _arrays(named):
    out, seen = {}, set()
    for name, t in named.items():
        arr = as_numpy(t)
        if id(arr) in seen:  # a tied weight once
            continue
        seen.add(id(arr))
        out[name] = np.ascontiguousarray(arr)
    return out


# -- optimizer and scheduler ------------------------------------------------------------------------------
def save_optimizer(optimizer, path):
    """Arrays to safetensors, the rest (param groups, per-parameter step counts) to its JSON metadata."""
    sd = optimizer.state_dict()
    arrays, scalars = {}, {}
    for index, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, Tensor):
                arrays[f"state.{index}.{name}"] = np.ascontiguousarray(as_numpy(value))
            else:
                scalars[f"{index}.{name}"] = value
    metadata = {"param_groups": json.dumps(sd["param_groups"]), "scalars": json.dumps(scalars)}
    save_file_atomic(arrays, path, metadata=metadata)


def load_optimizer(optimizer, path):
    arrays, metadata = load_file_with_metadata(path)
    state = {}
    for key, array in arrays.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = array
    for key, value in json.loads(metadata["scalars"]).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = json.loads(metadata["param_groups"])
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -- whole checkpoints ------------------------------------------------------------------------------------
def write_checkpoint(output_dir, step, write_files):
    """Call write_files(tmp_dir), then move tmp_dir to output_dir/checkpoint-<step> in one rename."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / f"{PREFIX_CHECKPOINT_DIR}-{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=output_dir))
    try:
        write_files(tmp)
        if final.exists():  # the same step saved again (a rerun): swap, then drop the old one
            old = output_dir / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def sorted_checkpoints(output_dir):
    """checkpoint-<step> folders in output_dir, oldest (lowest step) first; temporary ones are not listed."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := _CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def is_complete(checkpoint):
    return all((Path(checkpoint) / name).is_file() for name in REQUIRED_FILES)


def run_id_of(checkpoint):
    """The run that wrote a checkpoint (None: unreadable, or written before run ids existed)."""
    try:
        return read_json(Path(checkpoint) / TRAINER_STATE_NAME).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def new_run_id():
    return uuid.uuid4().hex


def latest_checkpoint(output_dir):
    """The newest complete checkpoint; incomplete ones (left by an older tinypeft) are passed over, loudly.
    Checkpoints of two runs in one folder are refused: which one to continue is not ours to guess."""
    checkpoints = sorted_checkpoints(output_dir)
    complete = [c for c in checkpoints if is_complete(c)]
    for c in checkpoints:
        if not is_complete(c):
            missing = [n for n in REQUIRED_FILES if not (c / n).is_file()]
            warnings.warn(f"{c} is incomplete (no {', '.join(missing)}) and is not resumed from; delete it")
    runs = {run_id_of(c) for c in complete}
    if len(runs) > 1:
        raise ValueError(f"{output_dir} holds checkpoints of {len(runs)} different runs; pass "
                         "resume_from_checkpoint=<the checkpoint folder> to say which to continue")
    return complete[-1] if complete else None


def remove_checkpoint(checkpoint):
    """Rename to a hidden name (atomic: the checkpoint is gone as a whole), then delete the files."""
    checkpoint = Path(checkpoint)
    trash = checkpoint.parent / f".trash-{checkpoint.name}-{uuid.uuid4().hex[:8]}"
    os.replace(checkpoint, trash)
    shutil.rmtree(trash, ignore_errors=True)


def cleanup_leftovers(output_dir):
    """Remove the hidden folders of killed runs (.tmp-checkpoint-*, .old-checkpoint-*, .trash-checkpoint-*).
    Call it only while holding output_dir's lock: another live run's .tmp folder is work in progress."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    leftovers = [p for p in output_dir.iterdir() if _LEFTOVER_RE.match(p.name) and p.is_dir()]
    for p in leftovers:
        shutil.rmtree(p, ignore_errors=True)
    return leftovers


def rotate_checkpoints(output_dir, save_total_limit, keep=None, run_id=None, newest=None):
    """Delete the current run's oldest checkpoints until save_total_limit of them remain. Never deleted:
    `keep` (the best one), `newest` (the one just written, which resuming needs; default: the highest
    step), and checkpoints of other runs (another run_id). So with a limit of 1 a best and a newest can
    both remain."""
    if save_total_limit is None:
        return []
    checkpoints = sorted_checkpoints(output_dir)
    if run_id is not None:
        checkpoints = [c for c in checkpoints if run_id_of(c) == run_id]
    if not checkpoints:
        return []
    protected = {Path(p).resolve() for p in (keep, newest or checkpoints[-1]) if p}
    deletable = [c for c in checkpoints if c.resolve() not in protected]
    excess = len(checkpoints) - save_total_limit
    deleted = deletable[:max(0, excess)]
    for c in deleted:
        remove_checkpoint(c)
    return deleted
