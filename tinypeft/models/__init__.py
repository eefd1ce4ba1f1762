"""Transformer architectures that load Hugging Face checkpoints: one file per architecture."""
from .auto import (  # noqa: F401
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForSpeechSeq2Seq,
    AutoModelForTokenClassification,
    AutoProcessor,
)
from .configuration_utils import PretrainedConfig  # noqa: F401
from .generation_config import GenerationConfig  # noqa: F401
from .modeling_utils import ModelOutput, PreTrainedModel  # noqa: F401
from .streamers import BaseStreamer, TextIteratorStreamer, TextStreamer  # noqa: F401
