"""`tinypeft merge`: fold a LoRA/IA3 adapter into its base model's weights and save a plain transformers
model folder (config.json, model.safetensors, the tokenizer files) that AutoModel* classes load."""
import os
import shutil
from pathlib import Path

from .cli_args import UsageError, add_model_options
from .cli_models import load_with_adapter, model_dir, output_folder

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "vocab.json", "merges.txt", "spiece.model", "generation_config.json",
                   "preprocessor_config.json"]


def add_merge_parser(sub, formatter_class):
    p = sub.add_parser("merge", help="merge a LoRA adapter into its model; save a transformers model folder",
                       description="merge_and_unload the adapter and save config.json + model.safetensors + the "
                       "tokenizer files, which transformers' AutoModel* classes load.", formatter_class=formatter_class)
    add_model_options(p, adapter_required=True, tokenizer=False)
    p.add_argument("--output", required=True, help="folder for the merged model")


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
