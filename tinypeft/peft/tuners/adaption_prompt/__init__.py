"""Llama-Adapter (Zhang et al. 2023): learned adaption prompts that the top layers' attention reads through a
zero-initialised gate. PEFT calls it adaption prompt."""
from .config import AdaptionPromptConfig  # noqa: F401
from .layer import AdaptedAttention, AdaptedAttentionGPT  # noqa: F401
from .model import AdaptionPromptModel  # noqa: F401
