"""Hugging Face PEFT's API, from scratch: configs, get_peft_model, PeftModel, AutoPeftModel."""
from .auto import (  # noqa: F401
    AutoPeftModel,
    AutoPeftModelForCausalLM,
    AutoPeftModelForFeatureExtraction,
    AutoPeftModelForQuestionAnswering,
    AutoPeftModelForSeq2SeqLM,
    AutoPeftModelForSequenceClassification,
    AutoPeftModelForTokenClassification,
)
from .config import PeftConfig, PeftType, PromptLearningConfig, TaskType  # noqa: F401
from .mapping import get_peft_model  # noqa: F401
from .peft_model import (  # noqa: F401
    PeftModel,
    PeftModelForCausalLM,
    PeftModelForFeatureExtraction,
    PeftModelForQuestionAnswering,
    PeftModelForSeq2SeqLM,
    PeftModelForSequenceClassification,
    PeftModelForTokenClassification,
)
from .tuners.lora.config import LoraConfig  # noqa: F401
from .tuners.lora.model import LoraModel  # noqa: F401
from .tuners.ia3.config import IA3Config  # noqa: F401
from .tuners.ia3.model import IA3Model  # noqa: F401
from .tuners.loha import LoHaConfig, LoHaModel  # noqa: F401
from .tuners.lokr import LoKrConfig, LoKrModel  # noqa: F401
from .tuners.ln_tuning import LNTuningConfig, LNTuningModel  # noqa: F401
from .tuners.vera import VeraConfig, VeraModel  # noqa: F401
from .tuners.miss import MissConfig, MissModel  # noqa: F401
from .tuners.hra import HRAConfig, HRAModel  # noqa: F401
from .tuners.oft import OFTConfig, OFTModel  # noqa: F401
from .tuners.boft import BOFTConfig, BOFTModel  # noqa: F401
from .tuners.fourierft import FourierFTConfig, FourierFTModel  # noqa: F401
from .tuners.adalora import AdaLoraConfig, AdaLoraModel  # noqa: F401
from .tuners.hira import HiraConfig, HiraModel  # noqa: F401
from .tuners.waveft import WaveFTConfig, WaveFTModel  # noqa: F401
from .tuners.c3a import C3AConfig, C3AModel  # noqa: F401
from .tuners.delora import DeloraConfig, DeloraModel  # noqa: F401
from .tuners.gralora import GraloraConfig, GraloraModel  # noqa: F401
from .tuners.road import RoadConfig, RoadModel  # noqa: F401
from .tuners.randlora import RandLoraConfig, RandLoraModel  # noqa: F401
from .tuners.beft import BeftConfig, BeftModel  # noqa: F401
from .tuners.supertuning import SupertuningConfig, SupertuningModel  # noqa: F401
from .tuners.peanut import PeanutConfig, PeanutModel  # noqa: F401
from .tuners.psoft import PsoftConfig, PsoftModel  # noqa: F401
from .tuners.deft import DeftConfig, DeftModel  # noqa: F401
from .tuners.lily import LilyConfig, LilyModel  # noqa: F401
from .tuners.glora import GloraConfig, GloraModel  # noqa: F401
from .tuners.pvera import PveraConfig, PveraModel  # noqa: F401
from .tuners.shira import ShiraConfig, ShiraModel  # noqa: F401
from .tuners.tinylora import TinyLoraConfig, TinyLoraModel  # noqa: F401
from .tuners.vblora import VBLoRAConfig, VBLoRAModel  # noqa: F401
from .tuners.unilora import UniLoraConfig, UniLoraModel  # noqa: F401
from .tuners.adaption_prompt import AdaptionPromptConfig, AdaptionPromptModel  # noqa: F401
from .tuners.p_tuning import (  # noqa: F401
    PromptEncoder,
    PromptEncoderConfig,
    PromptEncoderReparameterizationType,
)
from .tuners.prefix_tuning import PrefixEncoder, PrefixTuningConfig  # noqa: F401
from .tuners.prompt_tuning import PromptEmbedding, PromptTuningConfig, PromptTuningInit  # noqa: F401
from .utils.kbit import prepare_model_for_kbit_training  # noqa: F401
