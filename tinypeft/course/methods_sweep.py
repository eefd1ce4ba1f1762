"""Tutorial 08's comparison, done properly: fourteen ways to adapt MiniLM to four topics from 16 sentences,
each over several seeds and a small learning-rate grid; the results go to a JSON file the tutorial reads.

    nice -n 10 python -m tinypeft.course.methods_sweep     # the full sweep (tens of minutes)
    python -m tinypeft.course.methods_sweep --seeds 0 --methods "head only" LoRA --out /tmp/x.json

It writes tutorials/experiments/methods_sweep.json (with the command, the machine and its load); tutorial 08
reads that file and reruns one configuration live with run_one.

One run: the seed draws the 16 training sentences (4 per topic, from the 300 training sentences) and
initialises the classifier and the adapter; 10 epochs of one full-batch step each; then accuracy on the 284
training sentences not drawn (the validation set, which picks the learning rate) and on the 100 test
sentences (reported, never used to choose anything).
"""
import argparse
import contextlib
import io
import json
import logging
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np

import tinypeft as tp
from tinypeft import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, IA3Config,
                      LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, Trainer,
                      TrainingArguments, get_peft_model)
from tinypeft.peft import FourierFTConfig, HRAConfig, LNTuningConfig, LoHaConfig, LoKrConfig, OFTConfig, VeraConfig
from tinypeft.course.files import root
from tinypeft.demo import LABELS, accuracy, find_or_fetch_minilm, load_topics

RESULTS = "tutorials/experiments/methods_sweep.json"  # relative to the course's root (tinypeft.course.path)

# method -> (the PEFT config, or None for the classifier alone; its learning-rate grid). Each grid was widened
# until its best value (on validation) had a worse neighbour on both sides.
METHODS = {
    "head only": (lambda: None, [1e-2, 3e-2, 1e-1, 3e-1]),
    "LoRA": (lambda: LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1), [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]),
    "IA3": (lambda: IA3Config(task_type="SEQ_CLS"), [3e-3, 1e-2, 3e-2, 1e-1, 3e-1]),
    "prompt tuning": (lambda: PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=10), [1e-2, 3e-2, 1e-1, 3e-1]),
    "P-tuning": (lambda: PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=10, encoder_hidden_size=128),
                 [3e-3, 1e-2, 3e-2, 1e-1, 3e-1]),
    "prefix tuning": (lambda: PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=10), [1e-2, 3e-2, 1e-1, 3e-1]),
}
QV = ["query", "value"]  # the later methods adapt the layers LoRA adapts, so that only the method differs
# The later methods: each on a 3-point grid around the rate its paper or PEFT's examples use, widened by one rate
# where the best (on validation) sat at the top, and fewer seeds (LATER_SEEDS): their rows are coarser than the
# six above, and the tutorial says so.
LATER_METHODS = {
    "DoRA": (lambda: LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1, use_dora=True),
             [1e-2, 3e-2, 1e-1]),
    "LoHa": (lambda: LoHaConfig(task_type="SEQ_CLS", r=8, alpha=16, target_modules=QV), [3e-3, 1e-2, 3e-2, 1e-1]),
    "LoKr": (lambda: LoKrConfig(task_type="SEQ_CLS", r=8, alpha=16, target_modules=QV), [3e-3, 1e-2, 3e-2, 1e-1]),
    "VeRA": (lambda: VeraConfig(task_type="SEQ_CLS", r=256, target_modules=QV), [1e-2, 3e-2, 1e-1, 3e-1]),
    "OFT": (lambda: OFTConfig(task_type="SEQ_CLS", r=0, oft_block_size=32, target_modules=QV),
            [1e-3, 3e-3, 1e-2, 3e-2]),
    "HRA": (lambda: HRAConfig(task_type="SEQ_CLS", r=8, target_modules=QV), [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]),
    "FourierFT": (lambda: FourierFTConfig(task_type="SEQ_CLS", n_frequency=1000, scaling=150, target_modules=QV),
                  [1e-2, 3e-2, 1e-1, 3e-1]),
    "LN tuning": (lambda: LNTuningConfig(task_type="SEQ_CLS", target_modules=["LayerNorm"]), [1e-2, 3e-2, 1e-1]),
}
METHODS.update(LATER_METHODS)
LATER_SEEDS = [0, 1]
SEEDS = [0, 1, 2, 3, 4]
SHOTS = 4  # training sentences per topic
EPOCHS = 10


def load_data():
    """MiniLM's folder, its tokenizer, and the tokenized topics (train 300, test 100)."""
    logging.getLogger("tinypeft").setLevel(logging.ERROR)  # quiet "newly initialized classifier" on every load
    minilm = find_or_fetch_minilm(log=lambda *a: None)
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    topics = load_topics().map(lambda ex: tokenizer(ex["text"], truncation=True, max_length=32), remove_columns=["text"])
    return minilm, tokenizer, topics


def few_shot_split(topics, seed):
    """SHOTS sentences per topic drawn by `seed` to train on; the other training sentences validate."""
    rng = np.random.default_rng(seed)
    labels = np.array([row["label"] for row in topics["train"]])
    picked = np.concatenate([rng.choice(np.flatnonzero(labels == k), SHOTS, replace=False) for k in range(len(LABELS))])
    rest = np.setdiff1d(np.arange(len(labels)), picked)
    rows = list(topics["train"])
    return tp.Dataset.from_list([rows[i] for i in picked]), tp.Dataset.from_list([rows[i] for i in rest])


def run_one(minilm, tokenizer, topics, method, learning_rate, seed, workdir):
    """Train `method` at `learning_rate` on seed's 16 sentences; validation and test accuracy."""
    train, valid = few_shot_split(topics, seed)
    tp.manual_seed(seed)  # the classifier's and the adapter's initial values
    model = AutoModelForSequenceClassification.from_pretrained(minilm, num_labels=len(LABELS),
                                                               id2label=dict(enumerate(LABELS)))
    config = METHODS[method][0]()
    if config is None:  # the baseline: the frozen encoder, only the classifier trains
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("classifier")
    else:
        model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    args = TrainingArguments(output_dir=workdir, learning_rate=learning_rate, num_train_epochs=EPOCHS,
                             per_device_train_batch_size=16, per_device_eval_batch_size=128, warmup_ratio=0.1,
                             save_strategy="no", logging_steps=EPOCHS, disable_tqdm=True, seed=seed)
    trainer = Trainer(model, args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=accuracy)
    with contextlib.redirect_stdout(io.StringIO()):  # the Trainer's log lines
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        valid_acc = trainer.evaluate(eval_dataset=valid)["eval_accuracy"]
        test_acc = trainer.evaluate(eval_dataset=topics["test"])["eval_accuracy"]
    return {"method": method, "learning_rate": learning_rate, "seed": seed, "trainable": int(trainable),
            "valid_accuracy": float(valid_acc), "test_accuracy": float(test_acc), "train_seconds": round(seconds, 2)}


def summarize(runs):
    """Per method: the learning rate with the best mean validation accuracy, and test accuracy there (mean, std)."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        mine = [r for r in runs if r["method"] == method]
        by_lr = {}
        for r in mine:
            by_lr.setdefault(r["learning_rate"], []).append(r)
        grid = {lr: {"valid_mean": float(np.mean([r["valid_accuracy"] for r in rs])),
                     "test_mean": float(np.mean([r["test_accuracy"] for r in rs])),
                     "test_std": float(np.std([r["test_accuracy"] for r in rs], ddof=1)) if len(rs) > 1 else 0.0,
                     "n": len(rs)} for lr, rs in sorted(by_lr.items())}
        best = max(grid, key=lambda lr: grid[lr]["valid_mean"])
        seconds = [r["train_seconds"] for r in by_lr[best]]
        out[method] = {"trainable": mine[0]["trainable"], "best_learning_rate": best, **grid[best],
                       "train_seconds_mean": float(np.mean(seconds)),
                       "by_learning_rate": {repr(lr): g for lr, g in grid.items()}}
    return out


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="default: SEEDS, or LATER_SEEDS for the later methods")
    parser.add_argument("--learning-rates", nargs="+", type=float, default=None,
                        help="one grid for every method (default: each method's own grid, METHODS)")
    parser.add_argument("--out", default=str(root() / RESULTS))
    parser.add_argument("--add", action="store_true",
                        help="add these runs to the ones already in --out (same method, rate and seed: replaced)")
    args = parser.parse_args(argv)
    old = {"runs": [], "commands": []}
    if args.add and os.path.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
    minilm, tokenizer, topics = load_data()
    runs = []
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="tinypeft-sweep-") as work:
        for method in args.methods:
            for lr in args.learning_rates or METHODS[method][1]:
                for seed in args.seeds or (LATER_SEEDS if method in LATER_METHODS else SEEDS):
                    run = run_one(minilm, tokenizer, topics, method, lr, seed, work)
                    runs.append(run)
                    print(f"{method:14s} lr {lr:<6g} seed {seed}  valid {run['valid_accuracy']:.3f}  "
                          f"test {run['test_accuracy']:.3f}  ({run['train_seconds']:.1f} s)", flush=True)
    command = {
        "command": "python -m tinypeft.course.methods_sweep " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "load_average_at_start": load_before, "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "wall_seconds": round(time.time() - start, 1), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    new_keys = {(r["method"], r["learning_rate"], r["seed"]) for r in runs}
    runs = [r for r in old["runs"] if (r["method"], r["learning_rate"], r["seed"]) not in new_keys] + runs
    result = {
        "commands": old.get("commands", []) + [command], "machine": machine(),
        "setup": {"shots_per_topic": SHOTS, "epochs": EPOCHS, "valid_sentences": 300 - SHOTS * len(LABELS),
                  "test_sentences": len(topics["test"])},
        "summary": summarize(runs), "runs": runs,
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, args.out)  # atomically: a half-written file never replaces the last good one
    print("wrote", args.out)
    return result


if __name__ == "__main__":
    main()
