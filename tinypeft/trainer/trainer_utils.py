"""What the Trainer hands back (TrainOutput, EvalPrediction, PredictionOutput) and the random state it
saves, with transformers' names."""
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import numpy as np

from .. import creation

PREFIX_CHECKPOINT_DIR = "checkpoint"


class TrainOutput(NamedTuple):
    global_step: int
    training_loss: float
    metrics: Dict[str, float]


class EvalPrediction(NamedTuple):
    """What compute_metrics receives: the model's outputs (logits) and the labels, over the whole set."""

    predictions: np.ndarray
    label_ids: Optional[np.ndarray]


class PredictionOutput(NamedTuple):
    predictions: np.ndarray
    label_ids: Optional[np.ndarray]
    metrics: Optional[Dict[str, float]]


@dataclass
class TrainerState:
    """Where a run is, saved as trainer_state.json in every checkpoint (transformers' names). The last
    three fields are tinypeft's: the loss sums a resumed run needs to log exactly what an unbroken run logs."""

    global_step: int = 0
    epoch: float = 0.0
    max_steps: int = 0
    num_train_epochs: int = 0
    logging_steps: int = 500
    eval_steps: int = 500
    save_steps: int = 500
    train_batch_size: int = 8
    log_history: List[dict] = field(default_factory=list)
    best_metric: Optional[float] = None
    best_model_checkpoint: Optional[str] = None
    total_loss: float = 0.0  # sum of every step's loss: training_loss = total_loss / global_step
    logging_loss: float = 0.0  # sum of the step losses since the last log entry
    logging_count: int = 0
    run_id: Optional[str] = None  # which run wrote a checkpoint: rotation and resuming keep to their own run

    def save_to_json(self, path):
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load_from_json(cls, path):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path} holds a JSON {type(data).__name__}, not a trainer state object.")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or infinite loss (or gradient norm) and stopped before applying it."""


def set_seed(seed):
    """Seed tinypeft's generator (dropout, initialisers) and NumPy's global one (user code that uses it)."""
    np.random.seed(seed)
    creation.manual_seed(seed)


def get_rng_state():
    """Every random stream a training step draws from, as JSON-able dicts."""
    return {"tinypeft": creation.generator().bit_generator.state, "numpy": _numpy_global_state()}


def set_rng_state(state):
    creation.generator().bit_generator.state = state["tinypeft"]
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _numpy_global_state():
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def denumpify(value):
    """NumPy scalars and 0-d arrays -> Python numbers, so metrics serialise to JSON."""
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        return value.item()
    return value
