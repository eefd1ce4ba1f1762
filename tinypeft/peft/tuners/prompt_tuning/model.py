"""PromptEmbedding: the soft prompt itself, a [N * submodules, token_dim] table of free parameters.

No encoder in between: the gradient of the loss with respect to row i is just the gradient with respect to
the i-th input embedding of the model, so prompt tuning trains the input directly.
"""
import math

import numpy as np

from .... import nn
from ....creation import generator
from .config import PromptTuningInit


class PromptEmbedding(nn.Module):
    def __init__(self, config, word_embeddings):
        super().__init__()
        total = config.num_virtual_tokens * config.num_transformer_submodules
        self.embedding = nn.Embedding(total, config.token_dim)  # RANDOM: N(0, 1) rows
        if config.inference_mode:
            return  # the rows come from the adapter file
        if config.prompt_tuning_init == PromptTuningInit.SAMPLE_VOCAB:
            ids = generator().integers(0, word_embeddings.num_embeddings, size=total)  # tp.manual_seed applies
            self.embedding.weight.data = np.array(word_embeddings.weight.data[ids], dtype=np.float32)
        elif config.prompt_tuning_init == PromptTuningInit.TEXT:
            ids = text_init_ids(config, total)
            self.embedding.weight.data = np.array(word_embeddings.weight.data[ids], dtype=np.float32)

    def forward(self, indices):
        return self.embedding(indices)  # [B, n] -> [B, n, token_dim]


def text_init_ids(config, total):
    """The text's token ids (special tokens included, as the tokenizer returns them), repeated or cut to `total`."""
    from ....tokenization import AutoTokenizer

    kwargs = dict(config.tokenizer_kwargs or {})
    kwargs.pop("trust_remote_code", None)
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer_name_or_path, **kwargs)
    ids = list(tokenizer(config.prompt_tuning_init_text)["input_ids"])
    if not ids:
        raise ValueError(f"prompt_tuning_init_text {config.prompt_tuning_init_text!r} gives no tokens.")
    ids = ids * math.ceil(total / len(ids))
    return ids[:total]
