"""PromptEncoder (P-tuning): virtual tokens = MLP(embedding table), Linear-ReLU-Linear-ReLU-Linear, or
(encoder_reparameterization_type="LSTM", the paper's original) Linear-ReLU-Linear(bidirectional LSTM(table)).

The encoder couples the rows during training (they share its weights), which the paper found easier to
optimise than free rows. Its output [N, token_dim] is what the adapter file stores; a loaded adapter uses
that table directly, whichever encoder made it.
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
        self.embedding = nn.Embedding(self.total_virtual_tokens, self.token_dim)
        if not config.inference_mode and self.encoder_type == PromptEncoderReparameterizationType.LSTM:
            h = self.hidden_size
            self.lstm_head = nn.LSTM(input_size=self.input_size, hidden_size=h, num_layers=config.encoder_num_layers,
                                     dropout=config.encoder_dropout, bidirectional=True, batch_first=True)
            self.mlp_head = nn.Sequential(nn.Linear(2 * h, 2 * h), nn.ReLU(), nn.Linear(2 * h, self.output_size))
        elif not config.inference_mode:
            if config.encoder_num_layers != 2:
                warnings.warn(f"for {self.encoder_type.value}, the argument `encoder_num_layers` is ignored. "
                              "Exactly 2 MLP layers are used.")
            h = self.hidden_size
            self.mlp_head = nn.Sequential(nn.Linear(self.input_size, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                          nn.Linear(h, self.output_size))

    def forward(self, indices):
        input_embeds = self.embedding(indices)  # [B, n] -> [B, n, d]
        if self.encoder_type == PromptEncoderReparameterizationType.LSTM:
            return self.mlp_head(self.lstm_head(input_embeds)[0])  # [B, n, 2h] -> [B, n, d]
        return self.mlp_head(input_embeds)  # [B, n, d] -> [B, n, d]
