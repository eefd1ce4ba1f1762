"""Layers several architectures share, under transformers.modeling_layers' names.

GradientCheckpointingLayer: a block that can recompute itself in backward. Each architecture's repeated block
(GPT2Block, OPTDecoderLayer, LlamaDecoderLayer, BertLayer, T5Block) derives from it.
`model.gradient_checkpointing_enable()` sets `gradient_checkpointing` on every such block; while training, a
call then goes through tinypeft.utils.checkpoint.checkpoint.

GenericForSequenceClassification: the decoder-only classifier head (Llama's and GPT-2's).
"""
from .. import nn
from ..autograd import is_grad_enabled
from ..utils.checkpoint import checkpoint
from .heads import sequence_classification_output


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


class GenericForSequenceClassification:
    """Mixed in before an architecture's PreTrainedModel: its base model (under base_model_prefix) and a bias-free
    `score` [hidden, num_labels], read at each row's last non-padding token (a decoder sees the whole text there)."""

    def __init__(self, config):
        from .auto import AutoModel

        super().__init__(config)
        self.num_labels = config.num_labels
        setattr(self, self.base_model_prefix, AutoModel.model_class(config)(config))
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        out = self.base_model(input_ids, attention_mask=attention_mask, **kwargs)
        logits = self.score(out.last_hidden_state)  # [B, T, D] -> [B, T, num_labels]
        return sequence_classification_output(self.config, logits, input_ids, labels, pool_last_token=True)
