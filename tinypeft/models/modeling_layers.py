"""Layers several architectures share, under transformers.modeling_layers' names.

GradientCheckpointingLayer: a block that can recompute itself in backward. Each architecture's repeated block
(GPT2Block, OPTDecoderLayer, LlamaDecoderLayer, BertLayer, T5Block) derives from it.
`model.gradient_checkpointing_enable()` sets `gradient_checkpointing` on every such block; while training, a
call then goes through tinypeft.utils.checkpoint.checkpoint.

forward_layers: the loop over a stack's blocks with the key/value cache (and LayerDrop), for every decoder.

GenericForCausalLM: the language-model head of the decoder-only models (GPT-2's, OPT's, Llama's), and
GenericForSequenceClassification: their classifier head (Llama's and GPT-2's).
"""
from .. import nn
from ..autograd import is_grad_enabled
from ..creation import generator
from ..utils.checkpoint import checkpoint
from .heads import causal_lm_loss, sequence_classification_output
from .modeling_utils import ModelOutput


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


def forward_layers(layers, x, *args, past_key_values=None, use_cache=False, layerdrop=0.0, training=False):
    """x [B, T, D] through each layer in turn, as layer(x, *args, past, use_cache) -> (x, present): `past` is the
    layer's (key, value) from past_key_values (None without a cache), `present` its new entry. While training,
    LayerDrop (Fan et al., 2019) skips each layer with probability `layerdrop`.
    Returns x and the new cache: a tuple of the presents, or None without use_cache."""
    presents = [] if use_cache else None
    for i, layer in enumerate(layers):
        if training and layerdrop > 0 and generator().random() < layerdrop:
            continue
        x, present = layer(x, *args, None if past_key_values is None else past_key_values[i], use_cache)
        if use_cache:
            presents.append(present)
    return x, tuple(presents) if use_cache else None


class GenericForCausalLM:
    """Mixed in before an architecture's PreTrainedModel, whose __init__ makes the base model (under
    base_model_prefix) and a bias-free `lm_head` [hidden, vocab_size]: the next-token logits, and with labels
    the shifted cross-entropy (heads.causal_lm_loss)."""

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids=None, attention_mask=None, labels=None, logits_to_keep=0, **kwargs):
        """logits_to_keep (transformers' argument): 0 for every position's logits, n for the last n only (a
        prompt in generate() needs the last one, and the head is the largest product)."""
        if not isinstance(logits_to_keep, int) or logits_to_keep < 0:
            raise NotImplementedError(f"logits_to_keep={logits_to_keep!r}: tinypeft takes a count of last "
                                      "positions (an int >= 0), not a tensor of indices.")
        out = self.base_model(input_ids, attention_mask=attention_mask, **kwargs)
        hidden = out.last_hidden_state if logits_to_keep == 0 else out.last_hidden_state[:, -logits_to_keep:]
        logits = self.lm_head(hidden)  # [B, T, D] -> [B, T, V] (T: the positions kept)
        loss = causal_lm_loss(logits, labels) if labels is not None else None
        return ModelOutput(loss=loss, logits=logits, past_key_values=out.past_key_values)


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
