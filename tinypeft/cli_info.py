"""`tinypeft info`: a model's architecture and parameter counts, and with --method the trainable count
of that PEFT method, from config.json alone (init_empty_weights: nothing is loaded)."""
from pathlib import Path

from .cli_args import METHOD_OPTIONS, TASKS, UsageError, add_method_options, peft_config
from .cli_models import auto_class, default_task, model_dir, read_config


def add_info_parser(sub, formatter_class):
    p = sub.add_parser("info", help="architecture and parameter counts; with --method, the trainable count",
                       description="Print model_type, class, layers, hidden size and parameter counts. Nothing is "
                       "loaded: the model is built from config.json with init_empty_weights, so any size works.",
                       formatter_class=formatter_class)
    p.add_argument("--model", required=True, help="model folder or repo id")
    p.add_argument("--task", choices=TASKS, default=None, help="which head (default: config.json's architectures)")
    add_method_options(p, default_method=None)


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
