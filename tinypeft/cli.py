"""The `tinypeft` command: demo, train, evaluate, predict, generate, chat, merge, info, transcribe.

    tinypeft demo                                          # MiniLM + LoRA on a topic task, ~1 minute
    tinypeft info --model gpt2 --method lora --r 8         # architecture, parameters, trainable count
    tinypeft train gpt2 --task CAUSAL_LM --data data.jsonl --eval-data held_out.jsonl --output-dir out
    tinypeft evaluate --model MODEL --adapter out --data held_out.jsonl --output metrics.json
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

This file builds the parser from each command's own file (cli_<command>.py: its options and its cmd_*
function) and turns what the user got wrong into one line and exit code 2; the helpers the commands
share are in cli_args.py (argument types, method options) and cli_models.py (loading what is named).
"""
import argparse
import os
import sys

from . import cli_transcribe
from .cli_args import DefaultsFormatter, UsageError
from .cli_chat import add_chat_parser, cmd_chat
from .cli_course import add_course_parser, cmd_course
from .cli_demo import add_demo_parser, cmd_demo
from .cli_evaluate import add_evaluate_parser, cmd_evaluate
from .cli_generate import add_generate_parser, cmd_generate
from .cli_info import add_info_parser, cmd_info
from .cli_merge import add_merge_parser, cmd_merge
from .cli_predict import add_predict_parser, cmd_predict
from .cli_train import add_train_parser, cmd_train

# name -> (adds its parser, runs it), in the order `tinypeft --help` lists them
COMMANDS = {"demo": (add_demo_parser, cmd_demo), "train": (add_train_parser, cmd_train),
            "evaluate": (add_evaluate_parser, cmd_evaluate), "predict": (add_predict_parser, cmd_predict),
            "generate": (add_generate_parser, cmd_generate), "chat": (add_chat_parser, cmd_chat),
            "merge": (add_merge_parser, cmd_merge), "info": (add_info_parser, cmd_info),
            "transcribe": (cli_transcribe.add_parser, cli_transcribe.cmd_transcribe),
            "course": (add_course_parser, cmd_course)}


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tinypeft", description="Parameter-efficient fine-tuning on NumPy: "
        "run the demo, train an adapter, evaluate it, predict, generate, merge, inspect a model.",
        epilog="Run `tinypeft <command> --help` for the options of a command.")
    parser.add_argument("--version", action="version", version=f"tinypeft {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    for add_parser, _ in COMMANDS.values():
        add_parser(sub, DefaultsFormatter)
    parser.commands = sub.choices  # name -> its parser, whose .error() prints that command's usage
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = parser.commands[args.command]
    try:
        return COMMANDS[args.command][1](args)
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
