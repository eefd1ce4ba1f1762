from .config import PromptEncoderConfig, PromptEncoderReparameterizationType  # noqa: F401
from .model import PromptEncoder  # noqa: F401
