"""`tinypeft evaluate`: score a trained adapter (or a model alone) on a labelled file. Run the model with
--adapter over --data (the training columns) and print the metrics `train --eval-data` prints: eval_loss, with
eval_accuracy and eval_f1 (macro) for classification, eval_perplexity for language models. --output also
writes them as JSON.

    tinypeft evaluate --model MODEL --adapter out --data held_out.jsonl [--output metrics.json]

The file has the training columns (text,label; tokens,tags; text or prompt,completion). The metrics are
the ones `tinypeft train --eval-data` prints after each epoch, computed by the same code (cli_data.make_dataset
and cli_metrics.task_trainer): eval_loss, and eval_accuracy with eval_f1 (macro) for classifiers, or
eval_perplexity for language models. They are printed as one JSON object and written to --output if given.
"""
import json
import os
import tempfile
from pathlib import Path

from .cli_args import TASKS, UsageError, add_model_options, existing_file, positive_int
from .cli_metrics import CLASSIFICATION_TASKS, lm_evaluation, task_trainer
from .cli_models import (auto_class, context_length, default_task, existing_tokenizer_dir, load_tokenizer,
                         load_with_adapter, model_dir, read_config, virtual_tokens)


def add_evaluate_parser(sub, formatter_class):
    p = sub.add_parser("evaluate", help="score an adapter on a labelled file: accuracy and F1, or perplexity",
                       description=__doc__.split("\n\n")[0], formatter_class=formatter_class)
    add_model_options(p)
    p.add_argument("--task", choices=TASKS, default=None,
                   help="without --adapter: the model's task (default: from config.json); with one, its task_type")
    p.add_argument("--data", required=True, type=existing_file, help="JSONL, JSON or CSV file with labels")
    p.add_argument("--output", default=None, help="JSON file for the metrics (default: printed only)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="examples per forward pass")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help="truncate examples to this many tokens (default: 128, or the model's positions if fewer)")


def cmd_evaluate(args):
    from .cli_data import make_dataset
    from .trainer import TrainingArguments

    path = model_dir(args.model)
    output = Path(args.output) if args.output else None
    if output is not None and output.is_dir():
        raise UsageError(f"argument --output: {args.output} is a folder; give a file path")
    if output is not None and output.resolve() == Path(args.data).resolve():
        raise UsageError(f"argument --output: {args.output} is the --data file, which would be overwritten")
    tokenizer = load_tokenizer(existing_tokenizer_dir(args.tokenizer), args.adapter, path)
    virtual = 0
    if args.adapter is not None:
        if args.task is not None:
            raise UsageError("argument --task: the adapter's task_type decides the task; drop --task")
        model, config = load_with_adapter(args.model, args.adapter)
        task, virtual = str(config.task_type), virtual_tokens(config)
        if task not in TASKS:
            raise UsageError(f"argument --adapter: evaluate handles {', '.join(TASKS)} adapters; this one is {task}")
    else:
        task = args.task or default_task(read_config(path))
        model = auto_class(task).from_pretrained(args.model)
    context = context_length(read_config(path))
    max_length = args.max_length or min(128, context - virtual if context else 128)
    base_config = model.get_base_model().config if args.adapter else model.config
    if task == "SEQ_CLS" and base_config.pad_token_id is None:
        base_config.pad_token_id = tokenizer.pad_token_id  # GPT-2's classifier finds each row's end by it
    label2id = dict(base_config.label2id or {}) if task in CLASSIFICATION_TASKS else None
    try:
        dataset, collator_fn, _ = make_dataset(args.data, task, tokenizer, max_length, label2id=label2id)
    except (KeyError, ValueError, TypeError) as e:
        raise UsageError(f"argument --data: {args.data}: {e}") from None
    with tempfile.TemporaryDirectory() as scratch:  # the Trainer's output_dir: evaluate writes nothing there
        training_args = TrainingArguments(output_dir=scratch, per_device_eval_batch_size=args.batch_size,
                                          prediction_loss_only=lm_evaluation(task), disable_tqdm=True)
        trainer = task_trainer(task, model, training_args, data_collator=collator_fn(model))
        metrics = trainer.evaluation_loop(dataset, "eval").metrics
    text = json.dumps(metrics, indent=2)
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, output)  # atomic: never a half-written metrics file
        print(f"metrics written to {args.output}")
    return 0
