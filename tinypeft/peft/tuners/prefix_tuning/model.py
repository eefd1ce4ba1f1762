"""PrefixEncoder: produces the prefix, [N, num_layers * 2 * token_dim] = a key and a value row per layer.

Without projection the prefix is a free table. With prefix_projection (the paper's reparameterisation, which
trains more stably) a small table goes through Linear -> tanh -> Linear:

    P = W2 tanh(E W1^T + b1) + b2,  dP/dE = ((dP W2) * (1 - tanh^2)) W1

After training only P matters, so the adapter file stores P and a loaded adapter uses it as a table.
"""
from .... import nn


class PrefixEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.prefix_projection = config.prefix_projection and not config.inference_mode
        d, L, N = config.token_dim, config.num_layers, config.num_virtual_tokens
        if self.prefix_projection:
            self.embedding = nn.Embedding(N, d)
            self.transform = nn.Sequential(nn.Linear(d, config.encoder_hidden_size), nn.Tanh(),
                                           nn.Linear(config.encoder_hidden_size, L * 2 * d))
            if config.init_weights == "zero":
                nn.init.zeros_(self.transform[-1].weight)
                nn.init.zeros_(self.transform[-1].bias)
        else:
            self.embedding = nn.Embedding(N, L * 2 * d)
            if config.init_weights == "zero":
                nn.init.zeros_(self.embedding.weight)

    def forward(self, prefix):
        if self.prefix_projection:
            return self.transform(self.embedding(prefix))  # [B, N] -> [B, N, d] -> [B, N, 2 L d]
        return self.embedding(prefix)  # [B, N] -> [B, N, 2 L d]
