"""Embedding: a [num_embeddings, embedding_dim] table whose rows are looked up by token id."""
from .. import functional as F
from . import init
from .module import Module, Parameter


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("Padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings  # torch stores it non-negative
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.weight = Parameter(init.empty(num_embeddings, embedding_dim, dtype=dtype))  # [V, D]
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None and self.weight.is_allocated():
            self.weight.data[self.padding_idx] = 0  # the padding token embeds to zero and never learns

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)  # [B, T] -> [B, T, D]

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
