"""tinypeft.data: datasets from lists and files, and the collators that turn examples into padded batches."""
from .data_collator import (DataCollatorForCompletionOnlyLM, DataCollatorForLanguageModeling,  # noqa: F401
                            DataCollatorForSeq2Seq, DataCollatorForTokenClassification, DataCollatorWithPadding,
                            default_data_collator, pad_sequences)
from .dataset import Dataset, DatasetDict, load_dataset  # noqa: F401
