"""PromptEncoderConfig (P-tuning, Liu et al., 2021): virtual token embeddings produced by a small encoder."""
import enum
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftType, PromptLearningConfig


class PromptEncoderReparameterizationType(str, enum.Enum):
    MLP = "MLP"
    LSTM = "LSTM"

    def __str__(self):
        return self.value


@dataclass
class PromptEncoderConfig(PromptLearningConfig):
    encoder_reparameterization_type: Union[str, PromptEncoderReparameterizationType] = \
        PromptEncoderReparameterizationType.MLP
    encoder_hidden_size: Optional[int] = None  # token_dim when left None
    encoder_num_layers: int = 2  # LSTM only; the MLP always has 3 linear layers
    encoder_dropout: float = 0.0  # LSTM only

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.P_TUNING
        self.encoder_reparameterization_type = PromptEncoderReparameterizationType(self.encoder_reparameterization_type)
