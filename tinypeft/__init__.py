"""tinypeft: parameter-efficient fine-tuning of transformers, from scratch on NumPy."""
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import backend_info, get_device, set_device, set_matmul_backend
from .tensor import Tensor, get_default_dtype, set_default_dtype
from .creation import (
    arange,
    empty,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .ops.arithmetic import add, div, matmul, mul, neg, pow, sub
from .ops.elementwise import exp, gelu, log, relu, sigmoid, silu, sqrt, tanh
from .ops.reduce import amax, mean, sum
from .ops.shape import cat, flatten, gather, masked_fill, permute, reshape, split, squeeze, stack, transpose, unsqueeze, where
from . import functional, testing  # noqa: E402
from . import nn, optim  # noqa: E402

float32, float64, int64, bool_ = "float32", "float64", "int64", "bool"

__version__ = "0.1.0"

# transformers' and PEFT's names, so `from tinypeft import ...` reads like their quicktours
from .models import (  # noqa: E402,F401
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    GenerationConfig,
    TextIteratorStreamer,
    TextStreamer,
)
from .tokenization import AutoTokenizer  # noqa: E402,F401
from . import peft as _peft  # noqa: E402

# every public PEFT name (configs, TaskType, PeftModel*, AutoPeftModel*, get_peft_model) at the top level
globals().update({k: v for k, v in vars(_peft).items() if k[0].isupper() or k == "get_peft_model"})
from .trainer import (  # noqa: E402,F401
    DataCollatorForCompletionOnlyLM,
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    default_data_collator,
    set_seed,
)
from .data import Dataset, DatasetDict, load_dataset  # noqa: E402,F401
