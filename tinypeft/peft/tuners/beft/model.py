"""BeftModel: puts BEFT layers on the target Linear modules."""
from .... import nn
from ..tuners_utils import BaseTuner
from .layer import BeftLayer, BeftLinear

# PEFT's TRANSFORMERS_MODELS_TO_BEFT_TARGET_MODULES_MAPPING (the value projections), for tinypeft's model types
TRANSFORMERS_MODELS_TO_BEFT_TARGET_MODULES_MAPPING = {
    "opt": ["v_proj"],
    "llama": ["v_proj"],
    "mistral": ["v_proj"],
    "bert": ["value"],
    "t5": ["v"],
    "mt5": ["v"],
}


class BeftModel(BaseTuner):
    prefix = "beft_"
    layer_class, layers_mapping = BeftLayer, {nn.Linear: BeftLinear}
    default_targets = TRANSFORMERS_MODELS_TO_BEFT_TARGET_MODULES_MAPPING
