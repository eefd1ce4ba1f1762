"""get_peft_model and the tables that connect peft_type to classes (task_type's table,
MODEL_TYPE_TO_PEFT_MODEL_MAPPING, stands beside the task classes in peft_model.py)."""
from .config import PeftConfig, TaskType
from .peft_model import MODEL_TYPE_TO_PEFT_MODEL_MAPPING, PeftModel
from .tuners.lora.config import LoraConfig
from .tuners.lora.model import LoraModel
from .tuners.p_tuning import PromptEncoder, PromptEncoderConfig
from .tuners.prefix_tuning import PrefixEncoder, PrefixTuningConfig
from .tuners.prompt_tuning import PromptEmbedding, PromptTuningConfig
from .tuners.ia3.config import IA3Config
from .tuners.ia3.model import IA3Model
from .tuners.loha import LoHaConfig, LoHaModel
from .tuners.lokr import LoKrConfig, LoKrModel
from .tuners.ln_tuning import LNTuningConfig, LNTuningModel
from .tuners.vera import VeraConfig, VeraModel
from .tuners.miss import MissConfig, MissModel
from .tuners.hra import HRAConfig, HRAModel
from .tuners.oft import OFTConfig, OFTModel
from .tuners.boft import BOFTConfig, BOFTModel
from .tuners.fourierft import FourierFTConfig, FourierFTModel
from .tuners.adalora import AdaLoraConfig, AdaLoraModel
from .tuners.hira import HiraConfig, HiraModel
from .tuners.waveft import WaveFTConfig, WaveFTModel
from .tuners.c3a import C3AConfig, C3AModel
from .tuners.delora import DeloraConfig, DeloraModel
from .tuners.gralora import GraloraConfig, GraloraModel
from .tuners.road import RoadConfig, RoadModel
from .tuners.randlora import RandLoraConfig, RandLoraModel
from .tuners.beft import BeftConfig, BeftModel
from .tuners.supertuning import SupertuningConfig, SupertuningModel
from .tuners.peanut import PeanutConfig, PeanutModel
from .tuners.psoft import PsoftConfig, PsoftModel
from .tuners.deft import DeftConfig, DeftModel
from .tuners.lily import LilyConfig, LilyModel
from .tuners.glora import GloraConfig, GloraModel
from .tuners.pvera import PveraConfig, PveraModel
from .tuners.shira import ShiraConfig, ShiraModel
from .tuners.tinylora import TinyLoraConfig, TinyLoraModel
from .tuners.vblora import VBLoRAConfig, VBLoRAModel
from .tuners.unilora import UniLoraConfig, UniLoraModel
from .tuners.adaption_prompt import AdaptionPromptConfig, AdaptionPromptModel

PEFT_TYPE_TO_CONFIG_MAPPING = {"LORA": LoraConfig}
PEFT_TYPE_TO_TUNER_MAPPING = {"LORA": LoraModel}
PEFT_TYPE_TO_PROMPT_ENCODER_MAPPING = {}  # prompt-learning methods: the module that makes the virtual tokens


def register_peft_method(peft_type, config_cls, tuner_cls=None, prompt_encoder_cls=None):
    """How each method file plugs itself in (tuner_cls is None for prompt-learning methods)."""
    PEFT_TYPE_TO_CONFIG_MAPPING[peft_type] = config_cls
    if tuner_cls is not None:
        PEFT_TYPE_TO_TUNER_MAPPING[peft_type] = tuner_cls
    if prompt_encoder_cls is not None:
        PEFT_TYPE_TO_PROMPT_ENCODER_MAPPING[peft_type] = prompt_encoder_cls


register_peft_method("PROMPT_TUNING", PromptTuningConfig, prompt_encoder_cls=PromptEmbedding)
register_peft_method("PREFIX_TUNING", PrefixTuningConfig, prompt_encoder_cls=PrefixEncoder)
register_peft_method("P_TUNING", PromptEncoderConfig, prompt_encoder_cls=PromptEncoder)


def get_peft_model(model, peft_config, adapter_name="default", mixed=False, autocast_adapter_dtype=True,
                   revision=None, low_cpu_mem_usage=False):
    """Wrap `model` with a new adapter; returns the PeftModel subclass for peft_config.task_type."""
    if not isinstance(peft_config, PeftConfig):
        raise TypeError(f"peft_config must be a PeftConfig (e.g. LoraConfig), got {type(peft_config).__name__}.")
    if mixed:
        raise NotImplementedError("get_peft_model(mixed=True): mixed adapter types are not supported by tinypeft.")
    name_or_path = getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "name_or_path", None)
    if name_or_path:
        peft_config.base_model_name_or_path = str(name_or_path)
    if revision is not None:
        peft_config.revision = revision
    task = str(peft_config.task_type) if peft_config.task_type is not None else None
    cls = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(task, PeftModel)
    return cls(model, peft_config, adapter_name=adapter_name)


register_peft_method("IA3", IA3Config, IA3Model)
register_peft_method("LOHA", LoHaConfig, LoHaModel)
register_peft_method("LOKR", LoKrConfig, LoKrModel)
register_peft_method("LN_TUNING", LNTuningConfig, LNTuningModel)
register_peft_method("VERA", VeraConfig, VeraModel)
register_peft_method("MISS", MissConfig, MissModel)
register_peft_method("HRA", HRAConfig, HRAModel)
register_peft_method("OFT", OFTConfig, OFTModel)
register_peft_method("BOFT", BOFTConfig, BOFTModel)
register_peft_method("FOURIERFT", FourierFTConfig, FourierFTModel)
register_peft_method("ADALORA", AdaLoraConfig, AdaLoraModel)
register_peft_method("HIRA", HiraConfig, HiraModel)
register_peft_method("WAVEFT", WaveFTConfig, WaveFTModel)
register_peft_method("C3A", C3AConfig, C3AModel)
register_peft_method("DELORA", DeloraConfig, DeloraModel)
register_peft_method("GRALORA", GraloraConfig, GraloraModel)
register_peft_method("ROAD", RoadConfig, RoadModel)
register_peft_method("RANDLORA", RandLoraConfig, RandLoraModel)
register_peft_method("BEFT", BeftConfig, BeftModel)
register_peft_method("SUPERTUNING", SupertuningConfig, SupertuningModel)
register_peft_method("PEANUT", PeanutConfig, PeanutModel)
register_peft_method("PSOFT", PsoftConfig, PsoftModel)
register_peft_method("DEFT", DeftConfig, DeftModel)
register_peft_method("LILY", LilyConfig, LilyModel)
register_peft_method("GLORA", GloraConfig, GloraModel)
register_peft_method("PVERA", PveraConfig, PveraModel)
register_peft_method("SHIRA", ShiraConfig, ShiraModel)
register_peft_method("TINYLORA", TinyLoraConfig, TinyLoraModel)
register_peft_method("VBLORA", VBLoRAConfig, VBLoRAModel)
register_peft_method("UNILORA", UniLoraConfig, UniLoraModel)
register_peft_method("ADAPTION_PROMPT", AdaptionPromptConfig, AdaptionPromptModel)

__all__ = ["get_peft_model", "TaskType"]
