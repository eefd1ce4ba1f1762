"""tinypeft.trainer: transformers' Trainer and TrainingArguments on tinypeft models (and PEFT models).

The collators live in tinypeft.data and are re-exported here, as transformers exports them beside Trainer."""
from ..data import (  # noqa: F401
    DataCollatorForCompletionOnlyLM,
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    default_data_collator,
)
from .trainer import Trainer  # noqa: F401
from .trainer_utils import (  # noqa: F401
    EvalPrediction,
    NonFiniteLossError,
    PredictionOutput,
    TrainerState,
    TrainOutput,
    set_seed,
)
from .training_args import TrainingArguments  # noqa: F401
