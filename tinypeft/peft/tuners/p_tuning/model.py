"""PromptEncoder (P-tuning): virtual tokens = MLP(embedding table), Linear-ReLU-Linear-ReLU-Linear.

The MLP couples the rows during training (they share its weights), which the paper found easier to
optimise than free rows. Its output [N, token_dim] is what the adapter file stores; a loaded adapter uses
that table directly. PEFT's LSTM variant is not implemented here.
"""
import warnings

from .... import nn
from .config import PromptEncoderReparameterizationType


class PromptEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.token_dim = config.token_dim
        self.input_size = self.output_size = config.token_dim
        self.hidden_size = config.encoder_hidden_size
        self.total_virtual_tokens = config.num_virtual_tokens * config.num_transformer_submodules
        self.encoder_type = PromptEncoderReparameterizationType(config.encoder_reparameterization_type)
        if self.encoder_type == PromptEncoderReparameterizationType.LSTM:
            raise NotImplementedError(
                "PromptEncoderConfig(encoder_reparameterization_type='LSTM') is not supported by tinypeft; use 'MLP'.")
        self.embedding = nn.Embedding(self.total_virtual_tokens, self.token_dim)
        if not config.inference_mode:
            if config.encoder_num_layers != 2:
                warnings.warn(f"for {self.encoder_type.value}, the argument `encoder_num_layers` is ignored. "
                              "Exactly 2 MLP layers are used.")
            h = self.hidden_size
            self.mlp_head = nn.Sequential(nn.Linear(self.input_size, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                          nn.Linear(h, self.output_size))

    def forward(self, indices):
        return self.mlp_head(self.embedding(indices))  # [B, n] -> [B, n, d] -> [B, n, d]
