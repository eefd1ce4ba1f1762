from .config import PrefixTuningConfig  # noqa: F401
from .model import PrefixEncoder  # noqa: F401
