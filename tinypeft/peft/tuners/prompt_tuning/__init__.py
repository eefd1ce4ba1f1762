from .config import PromptTuningConfig, PromptTuningInit  # noqa: F401
from .model import PromptEmbedding  # noqa: F401
