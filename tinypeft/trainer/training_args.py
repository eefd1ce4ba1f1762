"""TrainingArguments: the knobs of a training run, with transformers' names and defaults.

Only the arguments tinypeft acts on exist; an unknown one is a TypeError (a typo should not be silently
ignored). Values are checked when the object is made, so a bad one fails before any training starts.
"""
import math
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Union

LR_SCHEDULER_TYPES = ("linear", "cosine", "constant", "constant_with_warmup")
INTERVAL_STRATEGIES = ("no", "steps", "epoch")
REPORT_TO = ("jsonl", "tensorboard")  # the integrations tinypeft has; "all" and "none" as in transformers
OPTIMIZERS = ("adamw_torch", "adamw_hf", "sgd")  # both adamw names: the one AdamW (decoupled weight decay)


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(repr(a) for a in allowed)}.")


def _at_least(name, value, low, kind=(int,)):
    if isinstance(value, bool) or not isinstance(value, kind) or not value >= low or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= {low}; got {value!r}.")


@dataclass
class TrainingArguments:
    output_dir: str = "trainer_output"
    overwrite_output_dir: bool = False  # a new run deletes an earlier run's checkpoints instead of refusing
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0  # 0 turns clipping off (the norm is still logged)
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 0  # wins over warmup_ratio when > 0, as in transformers
    warmup_ratio: float = 0.0
    logging_steps: float = 500  # a float < 1 is a fraction of the total steps
    eval_strategy: str = "no"
    eval_steps: Optional[float] = None  # defaults to logging_steps
    save_strategy: str = "steps"
    save_steps: float = 500
    save_total_limit: Optional[int] = None
    load_best_model_at_end: bool = False  # reload the best checkpoint's weights when train() ends
    metric_for_best_model: Optional[str] = None  # "loss", "accuracy", ... ("eval_" is added when missing)
    greater_is_better: Optional[bool] = None  # default: False for losses, True otherwise
    seed: int = 42
    report_to: Union[None, str, List[str]] = "none"  # becomes a list: "none" -> [], "all" -> those installed
    disable_tqdm: bool = False
    label_names: Optional[List[str]] = field(default=None)
    prediction_loss_only: bool = False  # evaluate keeps no logits (a language model's are vocab-sized per token)
    optim: str = "adamw_torch"
    logging_dir: Optional[str] = None  # where report_to="jsonl" writes trainer_log.jsonl (default: output_dir)
    use_cpu: bool = False  # tinypeft trains on the CPU either way; True is accepted for scripts that pass it
    dataloader_num_workers: int = 0  # batches are made in the training process; > 0 is refused
    fp16: bool = False  # refused: NumPy trains in float32
    bf16: bool = False  # refused: NumPy trains in float32
    gradient_checkpointing: bool = False  # recompute each block's activations in backward
    gradient_checkpointing_kwargs: Optional[dict] = None

    def __post_init__(self):
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise ValueError(f"output_dir must be a non-empty path; got {self.output_dir!r}.")
        _choice("lr_scheduler_type", self.lr_scheduler_type, LR_SCHEDULER_TYPES)
        _choice("eval_strategy", self.eval_strategy, INTERVAL_STRATEGIES)
        _choice("save_strategy", self.save_strategy, INTERVAL_STRATEGIES)
        self.report_to = _report_to(self.report_to)
        _choice("optim", self.optim, OPTIMIZERS)
        for name in ("fp16", "bf16"):
            if getattr(self, name):
                raise ValueError(f"{name}=True: tinypeft trains in float32 on NumPy, which has no {name} "
                                 f"arithmetic (mixed precision is a GPU feature); remove {name}=True to train in "
                                 "float32.")
        if self.dataloader_num_workers != 0:
            raise ValueError(f"dataloader_num_workers={self.dataloader_num_workers!r}: tinypeft collates batches in "
                             "the training process (a batch of token ids takes microseconds next to the model's "
                             "step); use dataloader_num_workers=0.")
        _at_least("learning_rate", self.learning_rate, 0.0, (int, float))
        _at_least("num_train_epochs", self.num_train_epochs, 0.0, (int, float))
        if not isinstance(self.max_steps, int) or self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be a positive int, or -1 to train num_train_epochs; "
                             f"got {self.max_steps!r}.")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise ValueError("num_train_epochs must be > 0 when max_steps is -1 (nothing would be trained).")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            _at_least(name, getattr(self, name), 1)
        _at_least("weight_decay", self.weight_decay, 0.0, (int, float))
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {value!r}.")
        _at_least("adam_epsilon", self.adam_epsilon, 0.0, (int, float))
        _at_least("max_grad_norm", self.max_grad_norm, 0.0, (int, float))
        _at_least("warmup_steps", self.warmup_steps, 0)
        ratio = self.warmup_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1]; got {ratio!r}.")
        _positive_interval("logging_steps", self.logging_steps)
        if self.eval_steps is None:
            self.eval_steps = self.logging_steps
        if self.eval_strategy == "steps":
            _positive_interval("eval_steps", self.eval_steps)
        if self.save_strategy == "steps":
            _positive_interval("save_steps", self.save_steps)
        if self.save_total_limit is not None:
            _at_least("save_total_limit", self.save_total_limit, 1)
        if self.load_best_model_at_end:
            if self.eval_strategy == "no" or self.eval_strategy != self.save_strategy:
                raise ValueError(
                    "load_best_model_at_end requires the save and eval strategy to match and not be 'no': got "
                    f"eval_strategy={self.eval_strategy!r}, save_strategy={self.save_strategy!r}."
                )
            if self.metric_for_best_model is None:
                self.metric_for_best_model = "loss"  # transformers' default
        if self.metric_for_best_model is not None and self.greater_is_better is None:
            self.greater_is_better = not self.metric_for_best_model.endswith("loss")
        _at_least("seed", self.seed, 0)
        if self.seed >= 2 ** 32:
            raise ValueError(f"seed must be below 2**32 (NumPy's seeds are 32-bit); got {self.seed}.")

    # -- derived -------------------------------------------------------------------------------------------
    @property
    def train_batch_size(self):
        return self.per_device_train_batch_size

    @property
    def eval_batch_size(self):
        return self.per_device_eval_batch_size

    def get_warmup_steps(self, num_training_steps):
        return self.warmup_steps if self.warmup_steps > 0 else math.ceil(num_training_steps * self.warmup_ratio)

    def interval(self, name, max_steps):
        """logging_steps / eval_steps / save_steps as a whole number of steps (a fraction < 1 of max_steps)."""
        value = getattr(self, name)
        return max(1, math.ceil(max_steps * value)) if value < 1 else int(value)

    def to_dict(self):
        return asdict(self)


def _report_to(value):
    """transformers' rules: "none" (or None, or ["none"]) reports nowhere, "all" to every integration that is
    installed (jsonl always, tensorboard with tensorboardX), a name or a list of names to those; an
    integration whose package is missing is an ImportError naming the package, before training starts."""
    if value is None or value == "none" or value == ["none"]:
        return []
    if value == "all" or value == ["all"]:
        return ["jsonl"] + (["tensorboard"] if tensorboard_available() else [])
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"report_to={value!r}: give a name, a list of names, 'all' or 'none'.")
    for name in names:
        if name not in REPORT_TO:
            raise ValueError(f"report_to={name!r} is not supported; tinypeft reports to "
                             f"{', '.join(repr(a) for a in REPORT_TO)} (or 'all', or 'none').")
    if "tensorboard" in names and not tensorboard_available():
        raise ImportError("report_to='tensorboard' needs the tensorboardX package, which is not installed: "
                          "pip install tensorboardX (or pip install 'tinypeft[tensorboard]')")
    return list(dict.fromkeys(names))


def tensorboard_available():
    import importlib.util

    return importlib.util.find_spec("tensorboardX") is not None


def _positive_interval(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of steps (or a fraction < 1 of the total); got {value!r}.")
    if value > 1 and value != int(value):
        raise ValueError(f"{name} above 1 must be a whole number of steps; got {value!r}.")
