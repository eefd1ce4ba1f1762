"""BERT (Devlin et al., 2018), with the module names of transformers' modeling_bert.

An encoder: every token attends to every other non-padding token (no causal mask), and each sublayer is
post-norm, LayerNorm(x + sublayer(x)), unlike GPT-2's pre-norm. Its projections are nn.Linear, weight
[out, in], as stored in the checkpoints (PEFT's LoRA: fan_in_fan_out=False).

    embeddings = LayerNorm(word[input_ids] + token_type[token_type_ids] + position[position_ids])
    layer:  a = LayerNorm(x + dense(SelfAttention(x)));  y = LayerNorm(a + dense(gelu(dense(a))))
    pooler: tanh(dense(y[:, 0]))   (the [CLS] token, used by sequence classification)

past_key_values (per layer a (key, value) pair, [B, H, P, hd]) are P extra keys and values every token
attends to, before its own: prefix tuning's prefix (P-tuning v2 trains exactly this on BERT). As in
transformers, the real tokens' positions then start at P and attention_mask covers P + T keys.
"""
import math

import numpy as np

from .. import functional as F
from .. import nn
from ..ops.shape import cat
from ..tensor import Tensor, as_array
from . import fast_encoder
from .activations import activation
from .configuration_utils import PretrainedConfig
from .heads import sequence_classification_output
from .masking import attention_mask_4d, default_position_ids
from .modeling_layers import GradientCheckpointingLayer
from .modeling_utils import ModelOutput, PreTrainedModel, check_output_options
from .sdpa_attention import sdpa_attention_forward


class BertConfig(PretrainedConfig):
    model_type = "bert"
    defaults = dict(
        vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12,
        pad_token_id=0, classifier_dropout=None, position_embedding_type="absolute",
        is_decoder=False, add_cross_attention=False,
    )


class BertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # [B, T] -> [B, T, D]
        B, T = inputs_embeds.shape[:2]
        if token_type_ids is None:
            token_type_ids = np.zeros((B, T), dtype=np.int64)  # a single segment ("sentence A")
        if position_ids is None:
            position_ids = default_position_ids(0, T, B)
        x = inputs_embeds + self.token_type_embeddings(token_type_ids)  # same order of sums as transformers
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(
                f"hidden_size ({config.hidden_size}) is not a multiple of num_attention_heads "
                f"({config.num_attention_heads})."
            )
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.scaling = 1 / math.sqrt(self.attention_head_size)
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def _heads(self, x):  # [B, T, D] -> [B, H, T, hd]
        B, T, _ = x.shape
        return x.view(B, T, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(self, hidden_states, mask=None, layer_past=None):
        q = self._heads(self.query(hidden_states))
        k = self._heads(self.key(hidden_states))
        v = self._heads(self.value(hidden_states))
        if layer_past is not None:  # the prefix's keys and values come first: [B, H, P + T, hd]
            k = cat([layer_past[0], k], dim=-2)
            v = cat([layer_past[1], v], dim=-2)
        p = self.dropout.p if self.training else 0.0
        return sdpa_attention_forward(q, k, v, mask, dropout=p, scaling=self.scaling)  # [B, T, D]


class BertSelfOutput(nn.Module):
    """dense [in_features -> hidden], dropout, then the post-norm residual LayerNorm(... + input_tensor). After
    attention in_features is hidden_size; BertOutput is the same block after the MLP (intermediate_size)."""

    def __init__(self, config, in_features=None):
        super().__init__()
        self.dense = nn.Linear(in_features or config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)  # post-norm residual, [B, T, D]


class BertAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)  # the checkpoint's name: attention.self.query
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states, mask=None, layer_past=None):
        return self.output(self.self(hidden_states, mask, layer_past), hidden_states)


class BertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation(config.hidden_act)

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))  # [B, T, D] -> [B, T, intermediate]


class BertOutput(BertSelfOutput):
    def __init__(self, config):
        super().__init__(config, in_features=config.intermediate_size)


class BertLayer(GradientCheckpointingLayer):
    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states, mask=None, layer_past=None):
        a = self.attention(hidden_states, mask, layer_past)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, mask=None, past_key_values=None):
        if fast_encoder.applies(self, hidden_states, mask, past_key_values):  # inference: the same sums, no graph
            return Tensor._wrap(fast_encoder.encode(self.layer, hidden_states.data, mask))
        for i, layer in enumerate(self.layer):
            hidden_states = layer(hidden_states, mask, None if past_key_values is None else past_key_values[i])
        return hidden_states


class BertPooler(nn.Module):
    """tanh(dense(h_[CLS])): BERT's next-sentence objective trained this summary of the first token."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states):
        return F.tanh(self.dense(hidden_states[:, 0]))  # [B, T, D] -> [B, D]


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # transformers' BertEmbeddings has buffers position_ids / token_type_ids (arange / zeros); older
    # checkpoints saved them. We make them on the fly, so they are skipped without a warning.
    _keys_to_ignore_on_load_unexpected = [r"embeddings\.position_ids$", r"embeddings\.token_type_ids$"]


class BertModel(BertPreTrainedModel):
    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, past_key_values=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
        if past_key_values is not None and len(past_key_values) != len(self.encoder.layer):
            raise ValueError(f"past_key_values has {len(past_key_values)} (key, value) pairs; this BERT has "
                             f"{len(self.encoder.layer)} layers and needs one pair per layer.")
        P = 0 if past_key_values is None else past_key_values[0][0].shape[-2]
        B, T = (inputs_embeds if input_ids is None else as_array(input_ids)).shape[:2]
        if position_ids is None:
            position_ids = default_position_ids(P, T, B)  # after the P prefix positions, as transformers counts
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # [B, T, D]
        # [B, 1, 1, P + T]: padding keys are hidden from every query; padding queries still compute (ignored)
        mask = attention_mask_4d(attention_mask, B, 1, P + T, causal=False)
        x = self.encoder(x, mask, past_key_values)
        pooled = self.pooler(x) if self.pooler is not None else None
        return ModelOutput(last_hidden_state=x, pooler_output=pooled)


class BertForSequenceClassification(BertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        out = self.bert(input_ids, attention_mask=attention_mask, **kwargs)
        logits = self.classifier(self.dropout(out.pooler_output))  # [B, D] -> [B, num_labels]
        return sequence_classification_output(self.config, logits, input_ids, labels, pool_last_token=False)


class BertForTokenClassification(BertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        out = self.bert(input_ids, attention_mask=attention_mask, **kwargs)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # [B, T, D] -> [B, T, num_labels]
        loss = None
        if labels is not None:
            # one prediction per token; label -100 (padding, continuation word pieces) is left out
            labels = as_array(labels)
            loss = F.cross_entropy(logits.reshape(-1, self.num_labels), labels.reshape(-1), ignore_index=-100)
        return ModelOutput(loss=loss, logits=logits)


class BertForQuestionAnswering(BertPreTrainedModel):
    """Extractive QA: a start score and an end score for every token (qa_outputs has num_labels = 2)."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, start_positions=None, end_positions=None, **kwargs):
        out = self.bert(input_ids, attention_mask=attention_mask, **kwargs)
        logits = self.qa_outputs(out.last_hidden_state)  # [B, T, D] -> [B, T, 2]
        start_logits, end_logits = logits.split(1, dim=-1)
        start_logits, end_logits = start_logits.squeeze(-1), end_logits.squeeze(-1)  # [B, T] each
        loss = None
        if start_positions is not None and end_positions is not None:
            # transformers: an answer outside the (truncated) input is clamped to T and then ignored
            T = start_logits.shape[1]
            start = np.clip(as_array(start_positions).reshape(-1), 0, T)
            end = np.clip(as_array(end_positions).reshape(-1), 0, T)
            loss = (F.cross_entropy(start_logits, start, ignore_index=T)
                    + F.cross_entropy(end_logits, end, ignore_index=T)) / 2
        return ModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)
