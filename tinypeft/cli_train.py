"""`tinypeft train`: a PEFT adapter trained on a JSONL/CSV file with the Trainer, evaluated on --eval-data
after each epoch, and saved (adapter_config.json + adapter_model.safetensors) to --output-dir with its tokenizer
(and, for classifiers, its label names). Data columns by task: SEQ_CLS text,label; TOKEN_CLS tokens,tags;
CAUSAL_LM text or prompt,completion; SEQ_2_SEQ_LM prompt,completion.

    tinypeft train MODEL --data train.jsonl [--eval-data held_out.jsonl] [--task SEQ_CLS] --output-dir out

The task comes from --task or from the data's columns (announced); the data is read and tokenized by
cli_data.make_dataset, the metrics come from cli_metrics (shared with `tinypeft evaluate`).
"""
import sys
from pathlib import Path

from .cli_args import (TASKS, UsageError, add_method_options, existing_file, non_negative_float, peft_config,
                       positive_float, positive_int, probability, seed)
from .cli_metrics import lm_evaluation, task_trainer
from .cli_models import (auto_class, context_length, default_task, existing_tokenizer_dir, load_tokenizer, model_dir,
                         output_folder, read_config, virtual_tokens)

# Measured with bench/cli_defaults.py on all-MiniLM-L6-v2 (the table is in the README): on 40-60 line sets
# 3 epochs at 1e-3 without warmup stayed near chance; 5 at 2e-3 with 10% warmup learns, and more epochs or a
# higher rate overfit the set whose held-out sentences have unseen forms.
TRAIN_DEFAULTS = dict(epochs=5.0, learning_rate=2e-3, prompt_learning_rate=1e-2, warmup_ratio=0.1, batch_size=8)


def add_train_parser(sub, formatter_class):
    p = sub.add_parser("train", help="train an adapter on a JSONL/CSV file and save it",
                       description=__doc__.split("\n\n")[0], formatter_class=formatter_class)
    p.add_argument("model", nargs="?", help="model folder or repo id (or give --model)")
    p.add_argument("--model", dest="model_option", metavar="MODEL", help="same as the positional model")
    add_method_options(p)
    p.add_argument("--task", choices=TASKS, default=None, help="default: from the data's columns (text,label: "
                   "SEQ_CLS; tokens,tags: TOKEN_CLS; text or prompt,completion: the model's LM task), announced")
    p.add_argument("--data", required=True, type=existing_file, help="JSONL, JSON or CSV file (columns: see above)")
    p.add_argument("--eval-data", type=existing_file, default=None,
                   help="held-out file, same columns: evaluated after each epoch (accuracy and macro-F1 for "
                   "classification, perplexity for language models)")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model's)")
    p.add_argument("--learning-rate", type=non_negative_float, default=None,
                   help=f"peak learning rate (default: {TRAIN_DEFAULTS['learning_rate']:g} for lora/ia3, "
                   f"{TRAIN_DEFAULTS['prompt_learning_rate']:g} for prompt methods; measured on small "
                   "classification sets, see the README)")
    p.add_argument("--epochs", type=positive_float, default=TRAIN_DEFAULTS["epochs"],
                   help="passes over the training set")
    p.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many steps (wins over --epochs)")
    p.add_argument("--warmup-ratio", type=probability, default=TRAIN_DEFAULTS["warmup_ratio"],
                   help="fraction of the steps over which the learning rate rises linearly from 0")
    p.add_argument("--batch-size", type=positive_int, default=TRAIN_DEFAULTS["batch_size"], help="examples per step")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help="truncate examples to this many tokens (default: 128, or the model's positions if fewer)")
    p.add_argument("--output-dir", default="tinypeft-adapter", help="where the adapter is saved")
    p.add_argument("--seed", type=seed, default=0, help="seed of the shuffling, dropout and LoRA init")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def cmd_train(args):
    from .cli_data import make_dataset
    from .trainer import NonFiniteLossError, TrainingArguments, set_seed

    if args.model and args.model_option and args.model != args.model_option:
        raise UsageError(f"argument --model: two different models given ({args.model}, {args.model_option})")
    name = args.model or args.model_option
    if not name:
        raise UsageError("argument model: a model folder or repo id is required")
    path = model_dir(name, "model")
    print(f"model: {name} from {Path(path).resolve()}")
    tokenizer_dir = existing_tokenizer_dir(args.tokenizer)
    output_dir = output_folder(args.output_dir, "--output-dir", model=path, tokenizer=tokenizer_dir)
    model_config = read_config(path)
    task = args.task or infer_task(args.data, model_config)
    config = peft_config(args, task, model_config.get("model_type"))
    context = context_length(model_config)
    virtual = virtual_tokens(config)  # prompt-learning's virtual tokens take positions too
    if context is not None and virtual >= context:
        raise UsageError(f"argument --num-virtual-tokens: {virtual} leaves none of the model's {context} positions "
                         f"for the text; use fewer than {context}")
    if args.max_length is None:
        args.max_length = min(128, context - virtual if context else 128)
    elif context is not None and args.max_length + virtual > context:
        room = context - virtual
        raise UsageError(f"argument --max-length: {args.max_length}"
                         f"{f' + {virtual} virtual tokens' if virtual else ''} is past the model's {context} "
                         f"positions; use --max-length {room} or less")
    tokenizer = load_tokenizer(tokenizer_dir or path)
    try:
        dataset, collator_fn, model_kwargs = make_dataset(args.data, task, tokenizer, args.max_length)
    except (KeyError, ValueError, TypeError) as e:
        raise UsageError(f"argument --data: {args.data}: {e}") from None
    eval_dataset = None
    if args.eval_data is not None:
        try:
            eval_dataset, _, _ = make_dataset(args.eval_data, task, tokenizer, args.max_length,
                                              label2id=model_kwargs.get("label2id"))
        except (KeyError, ValueError, TypeError) as e:
            raise UsageError(f"argument --eval-data: {args.eval_data}: {e}") from None

    from .peft import get_peft_model

    set_seed(args.seed)
    if task == "SEQ_CLS" and model_config.get("pad_token_id") is None and tokenizer.pad_token_id is not None:
        # the classifier reads each row's last non-pad token, which needs the pad id (GPT-2 has none)
        model_kwargs["pad_token_id"] = tokenizer.pad_token_id
    try:
        model = auto_class(task).from_pretrained(name, **model_kwargs)
    except ValueError as e:  # e.g. 3 labels in the data, a 2-way classifier in the checkpoint
        raise UsageError(f"argument model: {e}") from None
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as e:  # target modules that match nothing in this model
        raise UsageError(f"argument --target-modules: {e}") from None
    peft_model.print_trainable_parameters()
    lr = args.learning_rate if args.learning_rate is not None else (
        TRAIN_DEFAULTS["prompt_learning_rate"] if config.is_prompt_learning else TRAIN_DEFAULTS["learning_rate"])
    training_args = TrainingArguments(
        output_dir=str(output_dir), learning_rate=lr, num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1, warmup_ratio=args.warmup_ratio, per_device_train_batch_size=args.batch_size,
        save_strategy="no",
        logging_steps=0.1, seed=args.seed, disable_tqdm=args.no_progress,
        eval_strategy="epoch" if eval_dataset is not None else "no", per_device_eval_batch_size=args.batch_size,
        prediction_loss_only=lm_evaluation(task))
    output_dir.mkdir(parents=True, exist_ok=True)  # the Trainer writes loss_curve.png there
    trainer = task_trainer(task, peft_model, training_args, data_collator=collator_fn(model), train_dataset=dataset,
                           eval_dataset=eval_dataset)
    try:
        result = trainer.train()
        peft_model.save_pretrained(output_dir)  # refuses non-finite weights: a diverged run is no success
    except (NonFiniteLossError, ValueError) as e:
        raise UsageError(f"argument --learning-rate: {e}") from None
    tokenizer.save_pretrained(output_dir)
    print(f"train loss {result.training_loss:.4f} over {result.global_step} steps; "
          f"adapter saved to {args.output_dir}")
    warn_if_flat(trainer.state.log_history)
    return 0


def infer_task(data, config):
    """The task the data file's columns ask for, announced with the columns it was read from; a model
    that cannot learn it is refused, never trained on another task that ignores some columns (a GPT-2
    given text,label learns to classify, not to continue the text)."""
    from .cli_data import read_rows

    try:
        columns = set(read_rows(data).column_names)
    except ValueError as e:
        raise UsageError(f"argument --data: {data}: {e}") from None
    model_task = default_task(config)
    for needed, task in ((("text", "label"), "SEQ_CLS"), (("tokens", "tags"), "TOKEN_CLS"),
                         (("prompt", "completion"), None), (("text", "target"), "SEQ_2_SEQ_LM"), (("text",), None)):
        if set(needed) <= columns:
            break
    else:
        return model_task  # make_dataset names the missing columns
    if task is None:  # a language-modelling file: the model's kind of LM
        task = model_task if model_task != "SEQ_CLS" else "CAUSAL_LM"
    if task in ("CAUSAL_LM", "SEQ_2_SEQ_LM") and model_task == "SEQ_CLS":
        raise UsageError(f"argument --data: the columns {', '.join(needed)} are for a language model, but "
                         f"{config.get('model_type')} is an encoder without one; give text,label columns to "
                         "classify, or a causal/seq2seq model")
    print(f"task: {task} (from the columns {', '.join(needed)} of {data}; pass --task to choose another)")
    return task


def warn_if_flat(log_history, ratio=0.9):
    """A warning when the last logged loss is above `ratio` of the first: with a small data set the
    defaults may be too few steps or too low a learning rate, and a flat loss otherwise goes unnoticed."""
    losses = [e["loss"] for e in log_history if "loss" in e]
    if len(losses) >= 2 and losses[-1] > ratio * losses[0]:
        print(f"warning: the loss barely moved ({losses[0]:.4f} -> {losses[-1]:.4f}); the adapter may have "
              "learnt little. Try more --epochs or a higher --learning-rate.", file=sys.stderr)
