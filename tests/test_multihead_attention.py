"""nn.MultiheadAttention: its two paths agree, bad options are refused, and (parity) it matches torch's module
forward and backward, masks and layouts included."""
import numpy as np
import pytest

import tinypeft as tp

rng = np.random.default_rng(0)


def _inputs(batch_first, batched, L=4, S=5, N=3, E=12):
    def shape(n):
        return (N, n, E) if batched and batch_first else (n, N, E) if batched else (n, E)
    return rng.standard_normal(shape(L)), rng.standard_normal(shape(S))


def _model(**kwargs):
    tp.manual_seed(0)
    return tp.nn.MultiheadAttention(12, 3, **kwargs).to(np.float64)


def test_names_shapes_and_torch_init():
    m = tp.nn.MultiheadAttention(12, 3)
    assert [n for n, _ in m.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                     "out_proj.bias"]
    assert m.in_proj_weight.shape == (36, 12) and m.out_proj.weight.shape == (12, 12) and m.head_dim == 4
    bound = np.sqrt(6 / (36 + 12))  # xavier_uniform on [3E, E]
    assert 0.9 * bound < np.abs(m.in_proj_weight.detach().numpy()).max() <= bound
    assert not m.in_proj_bias.detach().numpy().any() and not m.out_proj.bias.detach().numpy().any()
    no_bias = tp.nn.MultiheadAttention(12, 3, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["in_proj_weight", "out_proj.weight"]


@pytest.mark.parametrize("batch_first, batched", [(False, True), (True, True), (False, False)])
def test_the_fused_path_gives_the_weights_paths_output(batch_first, batched):
    m = _model(batch_first=batch_first)
    x, y = _inputs(batch_first, batched)
    kpm = np.zeros((3, 5) if batched else (5,), bool)
    kpm[..., 2] = True
    am = rng.standard_normal((4, 5))
    args = (tp.tensor(x), tp.tensor(y), tp.tensor(y))
    with tp.no_grad():
        out, w = m(*args, key_padding_mask=tp.tensor(kpm), attn_mask=tp.tensor(am))
        fused, none = m(*args, key_padding_mask=tp.tensor(kpm), attn_mask=tp.tensor(am), need_weights=False)
    assert none is None and out.shape == x.shape
    np.testing.assert_allclose(fused.numpy(), out.numpy(), atol=1e-12)
    assert w.shape == ((3, 4, 5) if batched else (4, 5))
    np.testing.assert_allclose(w.numpy().sum(-1), 1.0, atol=1e-12)
    assert not w.numpy()[..., 2].any()  # the padded key gets no weight


def test_dropout_acts_on_the_weights_in_training_only():
    x = tp.tensor(rng.standard_normal((4, 12)))
    plain, dropped = _model(), _model(dropout=0.5)
    with tp.no_grad():
        np.testing.assert_array_equal(dropped.eval()(x, x, x)[0].numpy(), plain(x, x, x)[0].numpy())
        w = dropped.train()(x, x, x, average_attn_weights=False)[1].numpy()
        w0 = plain(x, x, x, average_attn_weights=False)[1].numpy()
    kept = w != 0
    assert 0 < kept.mean() < 1  # some weights dropped, the survivors scaled by 1 / (1 - p)
    np.testing.assert_allclose(w[kept], 2 * w0[kept], atol=1e-12)


def test_unsupported_options_are_refused():
    for kwargs in ({"add_bias_kv": True}, {"add_zero_attn": True}, {"kdim": 5}, {"vdim": 7}):
        with pytest.raises(NotImplementedError, match=next(iter(kwargs))):
            tp.nn.MultiheadAttention(12, 3, **kwargs)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        tp.nn.MultiheadAttention(10, 3)
    x = tp.randn(4, 12)
    with pytest.raises(ValueError, match="is_causal"):
        tp.nn.MultiheadAttention(12, 3)(x, x, x, is_causal=True)


@pytest.mark.parity
@pytest.mark.parametrize("batch_first, batched, masks, need_weights, average", [
    (False, False, False, True, True), (False, True, True, True, True), (True, True, True, False, True),
    (True, True, True, True, False), (False, True, False, False, True)])
def test_matches_torch_forward_and_backward(batch_first, batched, masks, need_weights, average):
    import torch

    t = torch.nn.MultiheadAttention(12, 3, batch_first=batch_first).double()
    m = _model(batch_first=batch_first)
    m.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    x, y = _inputs(batch_first, batched)
    kw_t, kw_m = {"need_weights": need_weights, "average_attn_weights": average}, {}
    if masks:
        kpm = rng.random((3, 5)) < 0.3
        kpm[:, 0] = False  # every query keeps a key: no all -inf row
        am = rng.standard_normal((3 * 3, 4, 5))  # [N*H, L, S], float
        kw_t.update(key_padding_mask=torch.tensor(kpm), attn_mask=torch.tensor(am))
        kw_m.update(key_padding_mask=tp.tensor(kpm), attn_mask=tp.tensor(am))
    kw_m.update(need_weights=need_weights, average_attn_weights=average)
    xs_t = [torch.tensor(a, requires_grad=True) for a in (x, y, y.copy())]
    xs_m = [tp.tensor(a, requires_grad=True) for a in (x, y, y.copy())]
    out_t, w_t = t(*xs_t, **kw_t)
    out_m, w_m = m(*xs_m, **kw_m)
    np.testing.assert_allclose(out_m.detach().numpy(), out_t.detach().numpy(), atol=1e-12)
    assert (w_m is None) == (w_t is None)
    if w_t is not None:
        np.testing.assert_allclose(w_m.detach().numpy(), w_t.detach().numpy(), atol=1e-12)
    cot = rng.standard_normal(out_t.shape)
    out_t.backward(torch.tensor(cot))
    out_m.backward(tp.tensor(cot))
    for a, b in zip(xs_m, xs_t):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-11)
    grads_t = dict(t.named_parameters())
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads_t[n].grad.numpy(), atol=1e-11, err_msg=n)


# -- LoRA on it, as PEFT builds it ---------------------------------------------------------------------------
class _Attend(tp.nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = tp.nn.MultiheadAttention(12, 3)
        self.lin0 = tp.nn.Linear(12, 2)

    def forward(self, X):
        return self.lin0(self.mha(X, X, X)[0])


def _lora_mha(**kwargs):
    from tinypeft.peft import LoraConfig, get_peft_model

    tp.manual_seed(0)
    return get_peft_model(_Attend(), LoraConfig(target_modules=["mha"], init_lora_weights=False, **kwargs))


def test_lora_on_multihead_attention_has_peft_names_and_trains_both_projections():
    model = _lora_mha(r=4)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["base_model.model.mha.base_layer.out_proj.lora_A.default.weight",
                         "base_model.model.mha.base_layer.out_proj.lora_B.default.weight",
                         "base_model.model.mha.lora_A.default.weight", "base_model.model.mha.lora_B.default.weight"]
    mha = model.base_model.model.mha
    assert mha.lora_A["default"].weight.shape == (4, 12) and mha.lora_B["default"].weight.shape == (36, 4)
    assert "base_model.model.mha.base_layer.in_proj_weight" in model.state_dict()
    x = tp.randn(5, 12)
    model(x).sum().backward()
    assert all(np.abs(p.grad.numpy()).sum() > 0 for n, p in model.named_parameters() if p.requires_grad)


def test_lora_on_multihead_attention_merges_unmerges_and_unloads():
    model = _lora_mha()
    x = tp.randn(5, 12)
    with tp.no_grad():
        want = model(x).numpy()
        with model.disable_adapter():
            base = model(x).numpy()
        assert np.abs(want - base).max() > 1e-3  # the adapter does something
        model.merge_adapter()
        np.testing.assert_allclose(model(x).numpy(), want, atol=1e-5)
        model.unmerge_adapter()
        with model.disable_adapter():
            np.testing.assert_allclose(model(x).numpy(), base, atol=1e-5)
        plain = model.merge_and_unload()
        assert type(plain.mha) is tp.nn.MultiheadAttention and type(plain.mha.out_proj) is tp.nn.Linear
        np.testing.assert_allclose(plain(x).numpy(), want, atol=1e-5)


def test_lora_options_peft_refuses_on_multihead_attention():
    with pytest.raises(ValueError, match="DoRA"):
        _lora_mha(use_dora=True)
    with pytest.raises(NotImplementedError, match="lora_bias"):
        _lora_mha(lora_bias=True)
