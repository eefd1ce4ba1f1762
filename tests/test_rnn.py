"""nn.LSTM: torch's parameter names and shapes, gradients proven by finite differences through the whole
recurrence (it is composed of gradchecked ops; this checks the composition). Values against torch.nn.LSTM are in
tests/test_p_tuning_lstm_parity.py (parity marker)."""
import numpy as np
import pytest

import tinypeft as tp
from tinypeft import nn
from tinypeft.testing import gradcheck


def test_parameter_names_and_shapes_are_torchs():
    lstm = nn.LSTM(6, 4, num_layers=2, bidirectional=True, batch_first=True)
    shapes = {n: tuple(p.shape) for n, p in lstm.named_parameters()}
    want = {}
    for layer, layer_in in ((0, 6), (1, 8)):
        for sfx in (f"_l{layer}", f"_l{layer}_reverse"):
            want.update({f"weight_ih{sfx}": (16, layer_in), f"weight_hh{sfx}": (16, 4), f"bias_ih{sfx}": (16,),
                         f"bias_hh{sfx}": (16,)})
    assert shapes == want and list(shapes)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert all(np.abs(p.data).max() <= 0.5 for p in lstm.parameters())  # U(-1/sqrt(H), 1/sqrt(H)), H = 4
    assert set(dict(nn.LSTM(3, 2, bias=False).named_parameters())) == {"weight_ih_l0", "weight_hh_l0"}
    assert repr(lstm) == "LSTM(6, 4, num_layers=2, batch_first=True, bidirectional=True)"


@pytest.mark.parametrize("kw", [dict(), dict(num_layers=2, bidirectional=True, batch_first=True),
                                dict(bias=False, bidirectional=True)], ids=["one", "bi2_batch_first", "no_bias"])
def test_lstm_gradients(kw):
    tp.manual_seed(0)
    lstm = nn.LSTM(3, 2, **kw).double()
    x = tp.tensor(np.random.default_rng(1).standard_normal((2, 3, 3)), requires_grad=True)

    def fn(x, *params):
        out, (h, c) = lstm(x)
        return out, h, c

    assert gradcheck(fn, [x, *lstm.parameters()])


def test_initial_state_and_unbatched_input():
    tp.manual_seed(0)
    lstm = nn.LSTM(3, 2, num_layers=2).double()
    rng = np.random.default_rng(2)
    x = tp.tensor(rng.standard_normal((4, 3)), requires_grad=True)  # unbatched [T, in]
    h0 = tp.tensor(rng.standard_normal((2, 2)), requires_grad=True)  # [layers, H]
    c0 = tp.tensor(rng.standard_normal((2, 2)), requires_grad=True)

    def fn(x, h0, c0):
        out, (h, c) = lstm(x, (h0, c0))
        return out, h, c

    out, h, c = fn(x, h0, c0)
    assert out.shape == (4, 2) and h.shape == c.shape == (2, 2)
    batched, _ = lstm(x.detach().unsqueeze(1), (h0.detach().unsqueeze(1), c0.detach().unsqueeze(1)))
    np.testing.assert_allclose(batched.detach().numpy()[:, 0], out.detach().numpy())
    assert gradcheck(fn, [x, h0, c0])


def test_dropout_only_between_layers_and_only_in_training():
    tp.manual_seed(0)
    lstm = nn.LSTM(3, 2, num_layers=2, dropout=0.5)
    x = tp.tensor(np.ones((5, 1, 3), np.float32))
    with tp.no_grad():
        a = lstm.eval()(x)[0].numpy()
        b = lstm.eval()(x)[0].numpy()
        c = lstm.train()(x)[0].numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    with tp.no_grad():  # one layer: nothing between layers to drop
        single = nn.LSTM(3, 2, dropout=0.5).train()
        np.testing.assert_array_equal(single(x)[0].numpy(), single.eval()(x)[0].numpy())


def test_bad_arguments_are_refused():
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="input_size"):
        nn.LSTM(3, 4)(tp.tensor(np.zeros((2, 1, 5), np.float32)))


def test_p_tuning_lstm_encoder_trains_and_saves_its_output_table(tmp_path):
    from pathlib import Path

    from tinypeft.peft import PeftModel, PromptEncoderConfig, get_peft_model

    gpt2 = Path(__file__).parent / "fixtures" / "models" / "gpt2"
    tp.manual_seed(0)
    model = get_peft_model(tp.AutoModelForCausalLM.from_pretrained(gpt2), PromptEncoderConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=3, encoder_hidden_size=4, encoder_reparameterization_type="LSTM"))
    encoder = model.prompt_encoder["default"]
    assert isinstance(encoder.lstm_head, nn.LSTM) and encoder.lstm_head.bidirectional
    assert encoder.lstm_head.num_layers == 2 and encoder.mlp_head[0].in_features == 8  # 2 directions x 4
    ids = np.array([[5, 6, 7]])
    model(input_ids=ids, labels=ids).loss.backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lstm_head.weight_hh_l1_reverse" in n for n in trainable)
    assert all(model.get_parameter(n).grad is not None for n in trainable)
    model.eval()
    with tp.no_grad():
        want = model(input_ids=ids).logits.numpy()
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(tp.AutoModelForCausalLM.from_pretrained(gpt2), tmp_path)
    assert not hasattr(loaded.prompt_encoder["default"], "lstm_head")  # inference: the stored table only
    with tp.no_grad():
        np.testing.assert_allclose(loaded(input_ids=ids).logits.numpy(), want, atol=1e-6)
