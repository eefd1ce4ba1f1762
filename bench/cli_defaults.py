"""Measure `tinypeft train`'s default hyperparameters on three small classification sets with the real
all-MiniLM-L6-v2 (issue 16, friction 2: the old defaults underfit a 60-line set without a word).

    nice -n 10 python bench/cli_defaults.py                       # the grid below, every set
    nice -n 10 python bench/cli_defaults.py --sets reviews3 --configs "3 1e-3 0" "10 3e-3 0.1"

The sets (written to a temporary folder; seeded, so every run sees the same rows):
  topics60     60 training sentences of the demo's topics.jsonl (15 per topic), its 100 test sentences
  reviews3     60 product reviews, 3 classes (positive, negative, neutral), 30 held out
  sentiment2   40 one-line film opinions, 2 classes, 40 held out
  reviews3-unseen  as reviews3, but the 30 held-out reviews use sentence forms no training review has
Each configuration "epochs learning_rate warmup_ratio" runs `tinypeft train MODEL --data train.jsonl
--eval-data test.jsonl ...` (LoRA r=8, alpha 16, batch 8, seed 0) and reports the last epoch's held-out
accuracy and macro-F1, the final training loss, and the wall time with the 1-minute load average.
"""
import argparse
import ast
import io
import json
import os
import random
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# ----------------------------------------------------------------------------- the data sets

PRODUCTS = ["blender", "backpack", "phone case", "desk lamp", "kettle", "headset", "office chair", "water bottle",
            "keyboard", "tent", "toaster", "running shoes"]
REVIEW = {
    "positive": ["I love this {p}, it works perfectly.", "The {p} exceeded my expectations, great value.",
                 "Fantastic {p}: sturdy, well made and a joy to use.", "Best {p} I have ever bought, highly recommended.",
                 "The {p} arrived quickly and does exactly what I wanted.", "Really happy with the {p}, five stars."],
    "negative": ["The {p} broke after two days, total waste of money.", "Terrible {p}, it stopped working at once.",
                 "I regret buying this {p}; cheap plastic and it fell apart.", "Awful {p}, returned it the next morning.",
                 "The {p} is useless and customer support never replied.", "Do not buy this {p}, it is a disaster."],
    "neutral": ["The {p} is fine, nothing special either way.", "It is an average {p}; it does the job.",
                "The {p} arrived on Tuesday in a brown box.", "The {p} is okay for the price, neither good nor bad.",
                "I have used the {p} for a week; no strong opinion yet.", "The {p} is the same as my previous one."],
}
FILMS = ["the new thriller", "this comedy", "the documentary", "the sequel", "that animated film", "the drama",
         "the musical", "the western", "this horror film", "the remake"]
SENTIMENT = {
    "pos": ["{f} was wonderful and moving.", "I enjoyed {f} from start to finish.", "{f} is brilliant, go and see it.",
            "A delightful evening: {f} made us laugh and cry.", "{f} has superb acting and a clever plot."],
    "neg": ["{f} was boring and far too long.", "I walked out of {f} halfway through.", "{f} is a dull, lifeless mess.",
            "What a disappointment {f} turned out to be.", "{f} has wooden acting and a silly plot."],
}


def templated(templates, fill, key, n_train, n_test, seed):
    """n_train + n_test rows per class, no sentence in both splits (the pairs are shuffled, then cut)."""
    rng = random.Random(seed)
    train, test = [], []
    for label, forms in templates.items():
        pairs = [(t, x) for t in forms for x in fill]
        rng.shuffle(pairs)
        rows = [{"text": t.format(**{key: x}).capitalize() if t.startswith("{") else t.format(**{key: x}),
                 "label": label} for t, x in pairs]
        train += rows[:n_train]
        test += rows[n_train:n_train + n_test]
    rng.shuffle(train)
    return train, test


def unseen_templates(templates, fill, key, n_train, n_test, seed):
    """As templated, but the held-out rows use sentence forms the training rows never had (the last two of
    each class): the model must carry the sentiment words over, not recognise a sentence shape."""
    rng = random.Random(seed)
    train, test = [], []
    for label, forms in templates.items():
        for split, group, n in ((train, forms[:-2], n_train), (test, forms[-2:], n_test)):
            pairs = [(t, x) for t in group for x in fill]
            rng.shuffle(pairs)
            split += [{"text": t.format(**{key: x}), "label": label} for t, x in pairs[:n]]
    rng.shuffle(train)
    return train, test


def topics60():
    rows = [json.loads(line) for line in (ROOT / "tinypeft" / "demo" / "topics.jsonl").read_text().splitlines()]
    train, seen = [], {}
    for r in rows:
        if r["split"] == "train" and seen.get(r["label"], 0) < 15:
            seen[r["label"]] = seen.get(r["label"], 0) + 1
            train.append({"text": r["text"], "label": r["label"]})
    test = [{"text": r["text"], "label": r["label"]} for r in rows if r["split"] == "test"]
    return train, test


SETS = {"topics60": topics60,
        "reviews3": lambda: templated(REVIEW, PRODUCTS, "p", 20, 10, seed=1),
        "sentiment2": lambda: templated(SENTIMENT, FILMS, "f", 20, 20, seed=2),
        "reviews3-unseen": lambda: unseen_templates(REVIEW, PRODUCTS, "p", 20, 10, seed=3)}


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- one run

def run(model, train, test, out, epochs, lr, warmup, extra=()):
    from tinypeft.cli import main

    argv = ["train", model, "--data", str(train), "--eval-data", str(test), "--output-dir", str(out), "--no-progress"]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    if lr is not None:
        argv += ["--learning-rate", str(lr)]
    if warmup is not None:
        argv += ["--warmup-ratio", str(warmup)]
    argv += list(extra)
    buf, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with redirect_stdout(buf), redirect_stderr(err):
        code = main(argv)
    seconds = time.perf_counter() - start
    assert code == 0, err.getvalue()
    evals = [ast.literal_eval(line) for line in buf.getvalue().splitlines() if line.startswith("{'eval_loss'")]
    losses = [ast.literal_eval(line)["loss"] for line in buf.getvalue().splitlines() if line.startswith("{'loss'")]
    last = evals[-1]
    return {"accuracy": float(last["eval_accuracy"]), "f1": float(last["eval_f1"]), "final_loss": float(losses[-1]),
            "seconds": seconds, "load": os.getloadavg()[0], "warned": "barely moved" in err.getvalue()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--configs", nargs="+", default=["defaults", "3 1e-3 0", "10 1e-3 0", "10 3e-3 0.1",
                                                         "10 5e-3 0.1", "20 3e-3 0.1"],
                        help='"epochs lr warmup [seed]" each, or "defaults [seed]" for the CLI\'s own')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("| set | epochs | lr | warmup | seed | accuracy | macro-F1 | final loss | seconds | load |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in args.sets:
            train_rows, test_rows = SETS[name]()
            train, test = write(tmp / f"{name}-train.jsonl", train_rows), write(tmp / f"{name}-test.jsonl", test_rows)
            for config in args.configs:
                fields = config.split()
                epochs, lr, warmup = (None, None, None) if fields[0] == "defaults" else fields[:3]
                seed = fields[-1] if len(fields) in (2, 4) else "0"
                r = run(args.model, train, test, tmp / "out", epochs, lr, warmup, extra=["--seed", seed])
                shown = ("defaults", "", "") if fields[0] == "defaults" else (epochs, lr, warmup)
                print(f"| {name} ({len(train_rows)}/{len(test_rows)}) | {shown[0]} | {shown[1]} | {shown[2]} | {seed} | "
                      f"{r['accuracy']:.3f} | {r['f1']:.3f} | {r['final_loss']:.3f}{' (warned)' if r['warned'] else ''}"
                      f" | {r['seconds']:.0f} | {r['load']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
