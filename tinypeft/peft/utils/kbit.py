"""prepare_model_for_kbit_training (PEFT's name and behaviour): ready a quantized model for adapter training.

1. freeze every parameter of the base model (the adapters added next are the only ones to train);
2. cast float16/bfloat16 parameters (layer norms, embeddings, the head) to float32, for stable training;
3. for a model loaded in 4 or 8 bits (or keeping GGUF blocks) with use_gradient_checkpointing: make the input embeddings' output
   require grad (what reentrant checkpointing needs), and turn gradient checkpointing on.
"""
import numpy as np

from ...quantization.modules import _QuantizedParameter


def prepare_model_for_kbit_training(model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=None):
    loaded_in_kbit = getattr(model, "is_loaded_in_8bit", False) or getattr(model, "is_loaded_in_4bit", False)
    is_gguf_quantized = getattr(model, "quantization_method", None) == "gguf"  # GGUFQuantizationConfig's blocks
    if gradient_checkpointing_kwargs is None:
        gradient_checkpointing_kwargs = {"use_reentrant": True}
    for _, param in model.named_parameters():
        param.requires_grad = False
    for param in model.parameters():
        if isinstance(param, _QuantizedParameter):  # packed 4/8-bit values or GGUF blocks: frozen as stored
            continue
        if param.dtype in (np.float16,) or param.dtype.name == "bfloat16":
            param.data = param.data.astype(np.float32)
    if (loaded_in_kbit or is_gguf_quantized) and use_gradient_checkpointing:
        if gradient_checkpointing_kwargs.get("use_reentrant", True):
            model.enable_input_require_grads()
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)
    return model
