"""The small models of PEFT's tests/test_custom_models.py, built with tinypeft (same module names and shapes).

Each takes PEFT's test input X = arange(90).reshape(9, 10) (ids for the embedding model). The torch twins
used by the parity tests live in tests/test_peft_custom_models.py; weights are copied by state-dict key.
"""
import numpy as np

import tinypeft as tp
from tinypeft import nn
from tinypeft import functional as F
from tinypeft.models.gpt2 import Conv1D


def inputs(name):
    """PEFT's input for each model: 9 rows of 10 (floats, or token ids for EmbConv1D)."""
    X = np.arange(90).reshape(9, 10)
    return tp.tensor(X) if name == "EmbConv1D" else tp.tensor(X.astype(np.float32))


class MLP(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.lin0 = nn.Linear(10, 20, bias=bias)
        self.drop = nn.Dropout(0.5)
        self.lin1 = nn.Linear(20, 2, bias=bias)

    def forward(self, X):
        X = self.drop(F.relu(self.lin0(X)))    # [B, 10] -> [B, 20]
        return F.log_softmax(self.lin1(X), -1)  # [B, 20] -> [B, 2]


class ModelEmbConv1D(nn.Module):
    def __init__(self, emb_size=100):
        super().__init__()
        self.emb = nn.Embedding(emb_size, 5)
        self.conv1d = Conv1D(1, 5)
        self.lin0 = nn.Linear(10, 2)

    def forward(self, X):
        X = F.relu(self.conv1d(self.emb(X)))  # [B, 10] -> [B, 10, 5] -> [B, 10, 1]
        return F.log_softmax(self.lin0(X.flatten(1)), -1)


class ModelConv1D(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1d = nn.Conv1d(1, 1, 2)
        self.lin0 = nn.Linear(9, 2)

    def forward(self, X):
        X = F.relu(self.conv1d(X.reshape(-1, 1, 10)))  # [B, 1, 10] -> [B, 1, 9]
        return F.log_softmax(self.lin0(X.flatten(1)), -1)


class ModelConv2D(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.conv2d = nn.Conv2d(5, 10, 3, bias=bias)
        self.lin0 = nn.Linear(10, 2)

    def forward(self, X):
        X = F.relu(self.conv2d(X.reshape(-1, 5, 3, 3)))  # [2, 5, 3, 3] -> [2, 10, 1, 1]
        return F.log_softmax(self.lin0(X.flatten(1)), -1)


class ModelConv2DGroups(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin0 = nn.Linear(90, 288)
        self.conv2d = nn.Conv2d(16, 16, 3, groups=8)
        self.lin1 = nn.Linear(16, 2)

    def forward(self, X):
        X = self.lin0(X.flatten()).reshape(2, 16, 3, 3)  # [90] -> [288] -> [2, 16, 3, 3]
        X = F.relu(self.conv2d(X))                       # -> [2, 16, 1, 1]
        return F.log_softmax(self.lin1(X.flatten(1)), -1)


MODELS = {"MLP": MLP, "EmbConv1D": ModelEmbConv1D, "Conv1d": ModelConv1D, "Conv2d": ModelConv2D,
          "Conv2dGroups": ModelConv2DGroups}


class ModelConv1DBigger(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1d = nn.Conv1d(64, 16, 2)
        self.lin0 = nn.Linear(144, 2)

    def forward(self, X):
        X = X.reshape(-1, 1, 10) * tp.tensor(np.ones((1, 64, 1), np.float32))  # 64 copies of the row as channels
        X = F.relu(self.conv1d(X))                                              # -> [B, 16, 9]
        return F.log_softmax(self.lin0(X.flatten(1)), -1)


class ModelConv1DGroups(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1d = nn.Conv1d(8, 8, 3, groups=2)
        self.lin0 = nn.Linear(64, 2)

    def forward(self, X):
        X = X.reshape(-1, 1, 10) * tp.tensor(np.ones((1, 8, 1), np.float32))  # [B, 8, 10]
        X = F.relu(self.conv1d(X))                                             # -> [B, 8, 8]
        return F.log_softmax(self.lin0(X.flatten(1)), -1)


class ModelConv2D1x1(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv2d = nn.Conv2d(1, 10, kernel_size=(1, 1), padding=0)
        self.lin0 = nn.Linear(10 * 3 * 3, 2)

    def forward(self, X):
        X = F.relu(self.conv2d(X.reshape(-1, 1, 3, 3)))  # [10, 1, 3, 3] -> [10, 10, 3, 3]
        return F.log_softmax(self.lin0(X.flatten(1)), -1)


class ModelConv2DGroups2(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv2d = nn.Conv2d(16, 32, 3, padding=1, groups=2)
        self.lin0 = nn.Linear(12800, 2)

    def forward(self, X):
        # PEFT's model ignores its input and convolves a fixed ramp
        X = tp.tensor(np.arange(9 * 16 * 20 * 20, dtype=np.float32).reshape(9, 16, 20, 20))
        X = F.relu(self.conv2d(X))                        # -> [9, 32, 20, 20]
        return F.log_softmax(self.lin0(X.flatten(1)), -1)


MODELS.update({"Conv1dBigger": ModelConv1DBigger, "Conv1dGroups": ModelConv1DGroups, "Conv2d1x1": ModelConv2D1x1,
               "Conv2dGroups2": ModelConv2DGroups2})


class MLP_LayerNorm(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.layernorm0 = nn.LayerNorm(10, 10)  # PEFT's model passes 10 as eps (LayerNorm's second argument)
        self.lin0 = nn.Linear(10, 20, bias=bias)
        self.drop = nn.Dropout(0.5)
        self.layernorm1 = nn.LayerNorm(20, 20)
        self.lin1 = nn.Linear(20, 2, bias=bias)

    def forward(self, X):
        X = self.drop(F.relu(self.lin0(self.layernorm0(X))))
        return F.log_softmax(self.lin1(self.layernorm1(X)), -1)


MODELS["MLP_LayerNorm"] = MLP_LayerNorm


class MLP2(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.lin0 = nn.Linear(10, 32, bias=bias)
        self.drop = nn.Dropout(0.5)
        self.lin1 = nn.Linear(32, 2, bias=bias)

    def forward(self, X):
        X = self.drop(F.relu(self.lin0(X)))    # [B, 10] -> [B, 32]
        return F.log_softmax(self.lin1(X), -1)  # [B, 32] -> [B, 2]


class ModelConv2D2(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin0 = nn.Linear(10, 40)
        self.conv2d = nn.Conv2d(8, 32, 3)
        self.lin1 = nn.Linear(32, 2)

    def forward(self, X):
        X = F.relu(self.lin0(X)).reshape(-1, 8, 3, 3)  # [9, 40] -> [5, 8, 3, 3]
        X = F.relu(self.conv2d(X))                       # -> [5, 32, 1, 1]
        return F.log_softmax(self.lin1(X.flatten(1)), -1)


MODELS.update({"MLP2": MLP2, "Conv2d2": ModelConv2D2})


class ModelConv3D(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv3d = nn.Conv3d(5, 10, 3)
        self.lin0 = nn.Linear(10, 2)

    def forward(self, X):
        X = tp.stack([X] * 3, dim=-1).reshape(-1, 5, 3, 3, 3)  # [9, 10] -> [9, 10, 3] -> [2, 5, 3, 3, 3]
        X = F.relu(self.conv3d(X))                               # -> [2, 10, 1, 1, 1]
        return F.log_softmax(self.lin0(X.flatten(1)), -1)


MODELS["Conv3d"] = ModelConv3D


class ModelMha(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(10, 2)
        self.lin0 = nn.Linear(10, 2)

    def forward(self, X):
        X, _ = self.mha(X, X, X)  # unbatched self-attention over the 9 rows: [9, 10] -> [9, 10]
        return F.log_softmax(self.lin0(X), -1)


MODELS["MHA"] = ModelMha


class _LinearUsingParameter(nn.Module):
    """A linear layer written by hand, its weight stored [in, out]: no nn.Linear for LoRA to wrap."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(np.zeros((in_features, out_features), np.float32))
        if bias:
            self.bias = nn.Parameter(np.ones(out_features, np.float32))

    def forward(self, x):
        return x @ self.weight + self.bias


class MlpUsingParameters(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.lin0 = _LinearUsingParameter(10, 20, bias=bias)
        self.drop = nn.Dropout(0.5)
        self.lin1 = _LinearUsingParameter(20, 2, bias=bias)

    def forward(self, X):
        X = self.drop(F.relu(self.lin0(X)))
        return F.log_softmax(self.lin1(X), -1)


MODELS["MlpUsingParameters"] = MlpUsingParameters


def base_copy(peft_model, name="MLP"):
    """A fresh model `name` holding the base weights of peft_model (the adapter's own entries left out): the model
    an adapter saved from peft_model is loaded onto."""
    fresh = MODELS[name]().eval()
    own = set(fresh.state_dict())
    renamed = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
               for k, v in peft_model.state_dict().items()}
    fresh.load_state_dict({k: v for k, v in renamed.items() if k in own})
    return fresh


def saved_keys_and_reloaded_output(peft_model, path, name="MLP"):
    """Save peft_model's adapter to path; (the file's tensor names, sorted; the output of the adapter loaded back
    onto a copy of the base model), to compare with what PEFT writes and with peft_model's own output."""
    from tinypeft.checkpoint_io import read_header
    from tinypeft.peft import PeftModel

    peft_model.save_pretrained(path)
    header, _ = read_header(path / "adapter_model.safetensors")
    loaded = PeftModel.from_pretrained(base_copy(peft_model, name), path).eval()
    with tp.no_grad():
        return sorted(k for k in header if k != "__metadata__"), loaded(inputs(name)).numpy()
