"""The Trainer's default optimizer and schedule, chosen as transformers' Trainer chooses them.

AdamW over the parameters that require grad (a frozen base model costs nothing), in two groups: weight
decay for the weight matrices, none for biases and normalisation weights. Decaying a LayerNorm gain
towards 0 would shrink every activation it scales, and a bias does not multiply anything, so decay
buys no regularisation there (transformers' get_decay_parameter_names).
"""
from .. import nn
from ..optim import SGD, AdamW
from ..optim.lr_scheduler import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)


def _is_norm(module):
    return isinstance(module, (nn.LayerNorm, nn.RMSNorm)) or "LayerNorm" in type(module).__name__ \
        or "RMSNorm" in type(module).__name__


def decay_parameter_names(model):
    """Names of the parameters that get weight decay: not biases, not inside a norm layer."""
    no_decay = set()
    for prefix, module in model.named_modules():
        if _is_norm(module):
            no_decay.update(f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False))
    return {n for n, _ in model.named_parameters() if n not in no_decay and not n.endswith("bias")}


def create_optimizer(model, args):
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no parameter with requires_grad=True, so there is nothing to train "
                         "(for PEFT: did get_peft_model run, and is the adapter trainable?).")
    decay = decay_parameter_names(model)
    groups = [
        {"params": [p for n, p in trainable if n in decay], "weight_decay": args.weight_decay},
        {"params": [p for n, p in trainable if n not in decay], "weight_decay": 0.0},
    ]
    if args.optim == "sgd":
        return SGD([g for g in groups if g["params"]], lr=args.learning_rate, weight_decay=args.weight_decay)
    return AdamW([g for g in groups if g["params"]], lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                 eps=args.adam_epsilon, weight_decay=args.weight_decay)


def create_scheduler(optimizer, args, num_training_steps):
    warmup = args.get_warmup_steps(num_training_steps)
    kind = args.lr_scheduler_type
    if kind == "linear":
        return get_linear_schedule_with_warmup(optimizer, warmup, num_training_steps)
    if kind == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, num_training_steps)
    if kind == "constant_with_warmup":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    return get_constant_schedule_with_warmup(optimizer, 0)  # "constant": no warmup, lr throughout
