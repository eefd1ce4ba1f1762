"""tinypeft.trainer: transformers' Trainer and TrainingArguments on tinypeft models (and PEFT models).

The collators live in tinypeft.data and are re-exported here, as transformers exports them beside Trainer."""
from ..data import (DataCollatorForCompletionOnlyLM, DataCollatorForLanguageModeling,  # noqa: F401
                    DataCollatorForSeq2Seq, DataCollatorForTokenClassification, DataCollatorWithPadding,
                    default_data_collator)
from .trainer import Trainer  # noqa: F401
from .trainer_utils import (EvalPrediction, NonFiniteLossError, PredictionOutput, TrainerState,  # noqa: F401
                            TrainOutput, set_seed)
from .training_args import TrainingArguments  # noqa: F401
