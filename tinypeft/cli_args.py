"""What every `tinypeft` command shares about its arguments: the usage error, argparse types that check a
value when it is read, the help formatter, and the PEFT method options (--method, --r, ...) with the
PeftConfig they build."""
import argparse
import math
from pathlib import Path

METHODS = {"lora": "LORA", "ia3": "IA3", "prompt_tuning": "PROMPT_TUNING", "prefix_tuning": "PREFIX_TUNING",
           "p_tuning": "P_TUNING"}


TASKS = ["CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM", "TOKEN_CLS"]


METHOD_OPTIONS = {
    "r": (("lora",), "r"),
    "lora_alpha": (("lora",), "lora_alpha"),
    "lora_dropout": (("lora",), "lora_dropout"),
    "target_modules": (("lora", "ia3"), "target_modules"),
    "num_virtual_tokens": (("prompt_tuning", "prefix_tuning", "p_tuning"), "num_virtual_tokens"),
}


class UsageError(Exception):
    """A problem with what the user asked for: reported by argparse (exit code 2), not as a traceback."""


# ----------------------------------------------------------------------------- argument types

def _whole_number(text, low, bound):
    """int(text), refused below `low`; `bound` is how the message states the rule ("> 0")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
    return value


def positive_int(text):
    return _whole_number(text, 1, "> 0")


def non_negative_int(text):
    return _whole_number(text, 0, ">= 0")


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


# ----------------------------------------------------------------------------- help and method options

class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" once: not for None or an off flag (nothing to show), nor when the help text
    already says what the default is (e.g. "default: 1e-3 for lora")."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


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


def add_model_options(p, adapter_required=False, tokenizer=True):
    """--model, --adapter and --tokenizer, as the commands that run a model with a trained adapter take them."""
    p.add_argument("--model", required=True, help="the base model folder or repo id")
    if adapter_required:
        p.add_argument("--adapter", required=True, type=existing_dir, help="adapter folder saved by `train`")
    else:
        p.add_argument("--adapter", type=existing_dir, default=None,
                       help="adapter folder saved by `train` (default: none, the model alone)")
    if tokenizer:
        p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the adapter's, else the model's)")


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
