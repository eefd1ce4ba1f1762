"""tinypeft.optim: torch.optim's optimisers and learning-rate schedules."""
from . import lr_scheduler  # noqa: F401
from .adamw import AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
