"""PromptTuningConfig (Lester et al., 2021): N trainable input embeddings put in front of the real tokens."""
import enum
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftType, PromptLearningConfig


class PromptTuningInit(str, enum.Enum):
    TEXT = "TEXT"  # the embeddings of a text's tokens, repeated or cut to N
    SAMPLE_VOCAB = "SAMPLE_VOCAB"  # the embeddings of N random vocabulary tokens
    RANDOM = "RANDOM"  # N(0, 1) rows, like any fresh nn.Embedding

    def __str__(self):
        return self.value


@dataclass
class PromptTuningConfig(PromptLearningConfig):
    prompt_tuning_init: Union[PromptTuningInit, str] = PromptTuningInit.RANDOM
    prompt_tuning_init_text: Optional[str] = None
    tokenizer_name_or_path: Optional[str] = None
    tokenizer_kwargs: Optional[dict] = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.PROMPT_TUNING
        self.prompt_tuning_init = PromptTuningInit(self.prompt_tuning_init)
        if self.prompt_tuning_init == PromptTuningInit.TEXT and not self.tokenizer_name_or_path:
            raise ValueError(f"When prompt_tuning_init='TEXT', tokenizer_name_or_path can't be "
                             f"{self.tokenizer_name_or_path}.")
        if self.prompt_tuning_init == PromptTuningInit.TEXT and self.prompt_tuning_init_text is None:
            raise ValueError("When prompt_tuning_init='TEXT', prompt_tuning_init_text can't be None.")
        if self.tokenizer_kwargs and self.prompt_tuning_init != PromptTuningInit.TEXT:
            raise ValueError("tokenizer_kwargs only valid when using prompt_tuning_init='TEXT'.")
