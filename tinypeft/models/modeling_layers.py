"""GradientCheckpointingLayer (transformers.modeling_layers' name): a block that can recompute itself in backward.

Each architecture's repeated block (GPT2Block, OPTDecoderLayer, LlamaDecoderLayer, BertLayer, T5Block)
derives from it. `model.gradient_checkpointing_enable()` sets `gradient_checkpointing` on every such block;
while training, a call then goes through tinypeft.utils.checkpoint.checkpoint.
"""
from .. import nn
from ..autograd import is_grad_enabled
from ..utils.checkpoint import checkpoint


class GradientCheckpointingLayer(nn.Module):
    gradient_checkpointing = False

    def __call__(self, *args, **kwargs):
        if self.gradient_checkpointing and self.training and is_grad_enabled():
            return checkpoint(super().__call__, *args, **kwargs)
        return super().__call__(*args, **kwargs)


def set_gradient_checkpointing(model, enable):
    """Turn checkpointing on or off in every block of `model`; returns how many blocks it reached."""
    blocks = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for m in blocks:
        m.gradient_checkpointing = enable
    return len(blocks)
