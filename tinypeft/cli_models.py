"""Finding and loading what a `tinypeft` command names: model folders (local or in the Hugging Face cache),
tokenizers, adapters, and the output folder, each refused with a UsageError that names the argument."""
import logging
from pathlib import Path

from .cli_args import UsageError


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


def auto_class(task):
    from . import models

    return {"CAUSAL_LM": models.AutoModelForCausalLM, "SEQ_CLS": models.AutoModelForSequenceClassification,
            "SEQ_2_SEQ_LM": models.AutoModelForSeq2SeqLM, "TOKEN_CLS": models.AutoModelForTokenClassification,
            None: models.AutoModel}[task]


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
    quiet = logging.getLogger("tinypeft")
    level = quiet.level
    if n is not None:  # the adapter file holds the trained head: the base's "newly initialized" warning is wrong
        quiet.setLevel(logging.ERROR)
    try:
        if task is None:  # e.g. LoRA on Whisper: the class auto_mapping or config.json's architectures names
            from .peft.auto import base_class_without_task

            base = base_class_without_task(str(model), config.auto_mapping).from_pretrained(str(model), **kwargs)
        else:
            base = auto_class(task).from_pretrained(str(model), **kwargs)
    finally:
        quiet.setLevel(level)
    try:
        return PeftModel.from_pretrained(base, adapter), config
    except ValueError as e:  # target modules absent, shapes that differ: an adapter of another model
        trained_on = config.base_model_name_or_path or "an unrecorded model"
        raise UsageError(f"argument {flag}: it does not fit {model} (it was trained on {trained_on}): "
                         f"{str(e).splitlines()[0]}") from None
