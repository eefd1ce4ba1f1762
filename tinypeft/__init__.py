"""tinypeft: parameter-efficient fine-tuning of transformers, from scratch on NumPy.

Every public name is imported here by name (and listed in __all__), so grep and editors find them.
"""
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import backend_info, get_device, set_device, set_matmul_backend
from .tensor import Tensor, get_default_dtype, set_default_dtype
from .creation import (arange, empty, full, manual_seed, ones, ones_like, rand, randint, randn, tensor, zeros,
                       zeros_like)
from .ops.arithmetic import add, div, matmul, mul, neg, pow, sub
from .ops.elementwise import cos, exp, gelu, log, relu, sigmoid, silu, sin, sqrt, tanh
from .ops.reduce import amax, mean, sum
from .ops.shape import cat, flatten, gather, masked_fill, permute, reshape, split, squeeze, stack, transpose, unsqueeze, where
from . import functional, testing
from . import nn, optim

float32, float64, int64, bool_ = "float32", "float64", "int64", "bool"

__version__ = "0.1.0"

# transformers', PEFT's and their Trainer's names, so `from tinypeft import ...` reads like their quicktours
from .models import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForQuestionAnswering,  # noqa: E402
                     AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoModelForTokenClassification)
from .models import GenerationConfig, TextIteratorStreamer, TextStreamer  # noqa: E402
from .models import AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoProcessor  # noqa: E402
from .tokenization import AutoTokenizer  # noqa: E402
from .peft import (AutoPeftModel, AutoPeftModelForCausalLM, AutoPeftModelForFeatureExtraction,  # noqa: E402
                   AutoPeftModelForQuestionAnswering, AutoPeftModelForSeq2SeqLM, AutoPeftModelForSequenceClassification,
                   AutoPeftModelForTokenClassification, get_peft_model)
from .peft import (PeftConfig, PeftType, PromptLearningConfig, TaskType, LoraConfig, LoraModel,  # noqa: E402
                   IA3Config, IA3Model, LoHaConfig, LoHaModel, LoKrConfig, LoKrModel, LNTuningConfig,
                   LNTuningModel, VeraConfig, VeraModel, MissConfig, MissModel, HRAConfig,
                   HRAModel, PrefixEncoder, PrefixTuningConfig, PromptEmbedding, PromptEncoder,
                   PromptEncoderConfig, PromptEncoderReparameterizationType, PromptTuningConfig, PromptTuningInit)
from .peft import (AdaLoraConfig, AdaLoraModel, BOFTConfig, BOFTModel, C3AConfig, C3AModel,  # noqa: E402
                   DeloraConfig, DeloraModel, FourierFTConfig, FourierFTModel, GraloraConfig, GraloraModel,
                   HiraConfig, HiraModel, OFTConfig, OFTModel, RandLoraConfig, RandLoraModel, RoadConfig,
                   RoadModel, WaveFTConfig, WaveFTModel)
from .peft import BeftConfig, BeftModel  # noqa: E402
from .peft import SupertuningConfig, SupertuningModel  # noqa: E402
from .peft import PeanutConfig, PeanutModel  # noqa: E402
from .peft import PsoftConfig, PsoftModel  # noqa: E402
from .peft import DeftConfig, DeftModel  # noqa: E402
from .peft import LilyConfig, LilyModel  # noqa: E402
from .peft import GloraConfig, GloraModel  # noqa: E402
from .peft import (PveraConfig, PveraModel, ShiraConfig, ShiraModel, TinyLoraConfig, TinyLoraModel,  # noqa: E402
                   UniLoraConfig, UniLoraModel, VBLoRAConfig, VBLoRAModel)
from .peft import AdaptionPromptConfig, AdaptionPromptModel  # noqa: E402
from .peft import (PeftModel, PeftModelForCausalLM, PeftModelForFeatureExtraction,  # noqa: E402
                   PeftModelForQuestionAnswering, PeftModelForSeq2SeqLM, PeftModelForSequenceClassification,
                   PeftModelForTokenClassification)
from .trainer import (DataCollatorForCompletionOnlyLM, DataCollatorForLanguageModeling,  # noqa: E402
                      DataCollatorForSeq2Seq, DataCollatorForTokenClassification, DataCollatorWithPadding, Trainer,
                      TrainingArguments, default_data_collator, set_seed)
from .data import Dataset, DatasetDict, load_dataset  # noqa: E402

from .quantization import BitsAndBytesConfig, GGUFQuantizationConfig  # noqa: E402
from .peft import prepare_model_for_kbit_training  # noqa: E402

__all__ = [
    # autograd, devices, tensors
    "Tensor", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "backend_info", "get_device",
    "set_device", "set_matmul_backend", "get_default_dtype", "set_default_dtype", "float32", "float64", "int64",
    "bool_",
    # creation
    "arange", "empty", "full", "manual_seed", "ones", "ones_like", "rand", "randint", "randn", "tensor", "zeros",
    "zeros_like",
    # ops, as torch's top-level functions
    "add", "div", "matmul", "mul", "neg", "pow", "sub", "exp", "gelu", "log", "relu", "sigmoid", "silu", "sqrt",
    "tanh", "sin", "cos", "amax", "mean", "sum", "cat", "flatten", "gather", "masked_fill", "permute", "reshape", "split",
    "squeeze", "stack", "transpose", "unsqueeze", "where",
    # submodules
    "functional", "testing", "nn", "optim",
    # transformers
    "AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForQuestionAnswering", "AutoModelForSeq2SeqLM",
    "AutoModelForSequenceClassification", "AutoModelForTokenClassification", "AutoTokenizer",
    "AutoModelForSpeechSeq2Seq", "AutoFeatureExtractor", "AutoProcessor",
    "GenerationConfig", "TextStreamer", "TextIteratorStreamer",
    # PEFT
    "get_peft_model", "AutoPeftModel", "AutoPeftModelForCausalLM", "AutoPeftModelForFeatureExtraction",
    "AutoPeftModelForQuestionAnswering", "AutoPeftModelForSeq2SeqLM", "AutoPeftModelForSequenceClassification",
    "AutoPeftModelForTokenClassification", "PeftConfig", "PeftType", "PromptLearningConfig", "TaskType",
    "LoraConfig", "LoraModel", "IA3Config", "IA3Model", "LoHaConfig", "LoHaModel", "LoKrConfig", "LoKrModel",
    "LNTuningConfig", "LNTuningModel", "VeraConfig", "VeraModel", "MissConfig", "MissModel",
    "HRAConfig", "HRAModel",
    "OFTConfig", "OFTModel", "BOFTConfig", "BOFTModel", "FourierFTConfig", "FourierFTModel", "AdaLoraConfig",
    "AdaLoraModel", "HiraConfig", "HiraModel", "WaveFTConfig", "WaveFTModel", "C3AConfig", "C3AModel",
    "DeloraConfig", "DeloraModel", "GraloraConfig", "GraloraModel", "RoadConfig", "RoadModel",
    "RandLoraConfig", "RandLoraModel",
    "BeftConfig", "BeftModel",
    "SupertuningConfig", "SupertuningModel",
    "PeanutConfig", "PeanutModel",
    "PsoftConfig", "PsoftModel",
    "DeftConfig", "DeftModel",
    "LilyConfig", "LilyModel",
    "GloraConfig", "GloraModel",
    "PveraConfig", "PveraModel", "ShiraConfig", "ShiraModel", "TinyLoraConfig", "TinyLoraModel", "UniLoraConfig",
    "UniLoraModel", "VBLoRAConfig", "VBLoRAModel",
    "AdaptionPromptConfig", "AdaptionPromptModel",
    "PrefixEncoder", "PrefixTuningConfig", "PromptEmbedding",
    "PromptEncoder", "PromptEncoderConfig", "PromptEncoderReparameterizationType", "PromptTuningConfig",
    "PromptTuningInit", "PeftModel", "PeftModelForCausalLM", "PeftModelForFeatureExtraction",
    "PeftModelForQuestionAnswering", "PeftModelForSeq2SeqLM", "PeftModelForSequenceClassification",
    "PeftModelForTokenClassification", "prepare_model_for_kbit_training",
    # Trainer and data
    "BitsAndBytesConfig", "GGUFQuantizationConfig",
    "Trainer", "TrainingArguments", "set_seed", "default_data_collator", "DataCollatorForCompletionOnlyLM",
    "DataCollatorForLanguageModeling", "DataCollatorForSeq2Seq", "DataCollatorForTokenClassification",
    "DataCollatorWithPadding", "Dataset", "DatasetDict", "load_dataset",
]
