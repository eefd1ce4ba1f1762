"""Quantized weights: the code tables, blockwise error bounds, the C kernels against the NumPy reference,
loading every architecture quantized, and the errors bad input gets."""
import numpy as np
import pytest

import tinypeft as tp
from tinypeft.backend import cmatmul
from tinypeft.quantization import (BitsAndBytesConfig, Int8Params, Linear4bit, Linear8bitLt, Params4bit,
                                   create_dynamic_map, create_normal_map, dequantize_4bit, get_4bit_type,
                                   int8_vectorwise_dequant, int8_vectorwise_quant, quantize_4bit, quantized_linear)
from tinypeft.quantization import functional as QF
from tinypeft.quantization import matmul as qmm

FIXTURES = "tests/fixtures/models"
needs_c = pytest.mark.skipif(not cmatmul.available(), reason="the C extension is not built")


def weights(shape, seed=0, scale=0.02):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal(shape).astype(np.float32) * scale
    W.reshape(-1)[:: 97] *= 8  # a few outliers, as real weights have
    return W


# -- code tables -------------------------------------------------------------------------------------------
def test_nf4_table_is_the_normal_quantiles():
    assert np.allclose(create_normal_map(), get_4bit_type("nf4"), atol=2e-7)
    nf4 = get_4bit_type("nf4")
    assert nf4[0] == -1 and nf4[-1] == 1 and nf4[7] == 0 and np.all(np.diff(nf4) > 0)


def test_fp4_table_is_e2m1_scaled_to_one():
    fp4 = get_4bit_type("fp4")
    assert fp4[3] == 1.0 and fp4[11] == -1.0  # 0b0011 is the largest, 0b1xxx the negatives
    assert np.allclose(fp4[:8] * 12, [0, 0.0625, 8, 12, 4, 6, 2, 3]) and np.allclose(fp4[8:], -fp4[:8])


def test_dynamic_map_has_256_sorted_values_in_unit_range():
    code = create_dynamic_map()
    assert code.shape == (256,) and np.all(np.diff(code) >= 0) and code.max() == 1.0 and code.min() > -1.0
    assert 0.0 in code


def test_unknown_quant_type_is_refused():
    with pytest.raises(ValueError, match="'nf3' is not supported.*nf4"):
        get_4bit_type("nf3")
    with pytest.raises(ValueError, match="nf4"):
        Params4bit(np.zeros((2, 2), np.float32), quant_type="int4")


# -- numerics ----------------------------------------------------------------------------------------------
def test_packing_puts_the_first_value_in_the_high_nibble():
    nf4 = get_4bit_type("nf4")
    W = np.array([[1.0, -1.0, 0.0]], np.float32)  # absmax 1: indices 15, 0, 7
    packed, state = quantize_4bit(W, quant_type="nf4")
    assert packed.shape == (2, 1) and packed[0, 0] == (15 << 4 | 0) and packed[1, 0] >> 4 == 7
    assert np.array_equal(dequantize_4bit(packed, state), np.array([[1.0, -1.0, 0.0]], np.float32) * nf4[[15, 0, 7]].__abs__().max())


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("double", [False, True])
def test_4bit_error_within_half_the_widest_code_gap_per_block(quant_type, double):
    W = weights((37, 130))  # 4810 values: the last block is partial
    packed, state = quantize_4bit(W, blocksize=64, compress_statistics=double, quant_type=quant_type)
    assert packed.size == (W.size + 1) // 2 and state.absmax.size == -(-W.size // 64)
    D = dequantize_4bit(packed, state)
    code = np.sort(get_4bit_type(quant_type))
    half_gap = np.diff(code).max() / 2
    flat, err = W.reshape(-1), np.abs(D - W).reshape(-1)
    true_absmax = np.repeat(QF._block_absmax(flat, 64), 64)[: flat.size]
    used_absmax = np.repeat(QF.dequantize_absmax(state), 64)[: flat.size]
    # rounding to the nearest code value, plus (double quant) the error of the absmax itself
    bound = half_gap * true_absmax + np.abs(used_absmax - true_absmax) + 1e-7
    assert np.all(err <= bound)
    if double:  # the absmax values survive their own 8-bit quantization to within 1% of the largest
        assert state.absmax.dtype == np.uint8 and state.state2.blocksize == 256
        assert np.abs(used_absmax - true_absmax).max() <= 0.01 * true_absmax.max()


def test_block_maximum_is_exact_in_every_format():
    W = weights((4, 64))
    for qt in ("nf4", "fp4"):
        D = dequantize_4bit(*quantize_4bit(W, quant_type=qt))
        i = np.abs(W).argmax(axis=1)
        assert np.array_equal(D[np.arange(4), i], W[np.arange(4), i])  # code +-1 times absmax


def test_int8_rowwise_error_within_half_a_step():
    W = weights((20, 33))
    CB, SCB = int8_vectorwise_quant(W)
    assert CB.dtype == np.int8 and np.abs(CB).max() == 127 and np.allclose(SCB, np.abs(W).max(axis=1))
    err = np.abs(int8_vectorwise_dequant(CB, SCB) - W)
    assert np.all(err <= SCB[:, None] / 254 * (1 + 1e-5))


# -- the C kernels against the NumPy reference -------------------------------------------------------------
def quantized_params(kind, shape, seed=0):
    W = weights(shape, seed)
    if kind == "int8":
        return Int8Params(W)
    qt, double = kind.split("-")
    return Params4bit(W, quant_type=qt, compress_statistics=double == "double")


KINDS = ["nf4-single", "nf4-double", "fp4-single", "fp4-double", "int8"]


@needs_c
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (130, 300), (257, 64)])
def test_c_dequantize_is_bit_exact(kind, shape):
    w = quantized_params(kind, shape)
    assert np.array_equal(qmm.dequantize(w), qmm.reference_dequantize(w))
    if kind.endswith("double"):
        assert np.array_equal(qmm._absmax_c(w.quant_state), QF.dequantize_absmax(w.quant_state))


def rel_err(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


@needs_c
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [1, 5, 300])
def test_c_quantized_matmul_equals_dequantize_then_matmul(kind, m):
    w = quantized_params(kind, (300, 200), seed=m)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((m, 200)).astype(np.float32)
    g = rng.standard_normal((m, 300)).astype(np.float32)
    assert rel_err(qmm.matmul(x, w), qmm.reference_matmul(x, w)) < 1e-5  # m == 1: the GEMV
    assert rel_err(qmm.matmul_t(g, w), qmm.reference_matmul_t(g, w)) < 1e-5


@needs_c
@pytest.mark.parametrize("kind", ["nf4-single", "nf4-double", "fp4-double"])
@pytest.mark.parametrize("blocksize", [32, 64, 128])
def test_every_instruction_set_makes_the_4bit_decoding_product(kind, blocksize):
    """Rows of whole blocks (in_features a multiple of the block size) take AVX-512's table look-up product;
    each kernel this CPU runs against dequantize-then-matmul."""
    qt, double = kind.split("-")
    w = Params4bit(weights((37, 3 * blocksize), seed=blocksize), quant_type=qt, blocksize=blocksize,
                   compress_statistics=double == "double")
    x = np.random.default_rng(blocksize).standard_normal((1, 3 * blocksize)).astype(np.float32)
    want = qmm.reference_matmul(x, w)
    before = cmatmul.get_kernel()
    try:
        for kernel in cmatmul.kernels():
            cmatmul.set_kernel(kernel)
            assert rel_err(qmm.matmul(x, w), want) < 1e-5, kernel
    finally:
        cmatmul.set_kernel(before)


@needs_c
def test_c_quantized_matmul_is_the_same_on_one_thread_and_many():
    w = quantized_params("nf4-double", (700, 260))
    x = np.random.default_rng(2).standard_normal((33, 260)).astype(np.float32)
    before = cmatmul.get_num_threads()
    try:
        cmatmul.set_num_threads(1)
        one = qmm.matmul(x, w), qmm.matmul_t(x[:, :1].repeat(700, 1), w)
        cmatmul.set_num_threads(4)
        many = qmm.matmul(x, w), qmm.matmul_t(x[:, :1].repeat(700, 1), w)
    finally:
        cmatmul.set_num_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(one, many))


# -- modules -----------------------------------------------------------------------------------------------
def test_linear4bit_forward_and_backward_use_the_dequantized_weight():
    layer = Linear4bit(70, 9, bias=True, quant_type="nf4")
    W = weights((9, 70))
    layer.weight.data = W  # quantized on assignment
    layer.bias = tp.nn.Parameter(np.arange(9, dtype=np.float32))
    assert layer.weight.dtype == np.uint8 and layer.weight.shape == (315, 1) and layer.weight.numel() == 630
    x = tp.tensor(np.random.default_rng(0).standard_normal((2, 3, 70)).astype(np.float32), requires_grad=True)
    y = layer(x)
    D = layer.weight.dequantize()
    assert np.allclose(y.detach().numpy(), x.detach().numpy() @ D.T + np.arange(9), atol=1e-5)
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), np.ones((2, 3, 9)) @ D, atol=1e-5)
    assert layer.bias.grad.numpy().tolist() == [6.0] * 9
    assert layer.weight.grad is None


def test_training_a_quantized_weight_is_refused_with_transformers_message():
    layer = Linear8bitLt(4, 3, has_fp16_weights=False)
    layer.weight.data = weights((3, 4))
    with pytest.raises(RuntimeError, match="cannot perform fine-tuning on purely quantized models"):
        layer.weight.requires_grad_(True)
    layer.weight.requires_grad = True  # past the guard: the op itself refuses
    with pytest.raises(RuntimeError, match="attach trainable adapters"):
        layer(tp.ones(2, 4))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="load_in_4bit and load_in_8bit are both True"):
        BitsAndBytesConfig(load_in_4bit=True, load_in_8bit=True)
    with pytest.raises(ValueError, match="bnb_4bit_quant_type 'int4' is not supported"):
        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="int4")
    with pytest.raises(ValueError, match="float32 only"):
        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype="bfloat16")
    with pytest.raises(TypeError, match="unexpected arguments"):
        BitsAndBytesConfig(load_in_4bits=True)
    with pytest.raises(ValueError, match="nothing to quantize"):
        tp.AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/llama", quantization_config=BitsAndBytesConfig())


def test_config_defaults_match_transformers():
    c = BitsAndBytesConfig(load_in_4bit=True)
    assert (c.bnb_4bit_quant_type, c.bnb_4bit_use_double_quant, c.llm_int8_threshold, c.llm_int8_skip_modules) == \
        ("fp4", False, 6.0, None)
    assert c.quantization_method() == "fp4" and BitsAndBytesConfig(load_in_8bit=True).quantization_method() == "llm_int8"
    assert BitsAndBytesConfig.from_dict(c.to_dict()).to_dict() == c.to_dict()


# -- loading every architecture ----------------------------------------------------------------------------
LOADERS = [("gpt2", "AutoModelForCausalLM"), ("opt", "AutoModelForCausalLM"), ("llama", "AutoModelForCausalLM"),
           ("bert", "AutoModel"), ("t5", "AutoModelForSeq2SeqLM"), ("mt5", "AutoModelForSeq2SeqLM")]


def _outputs(model, name):
    ids = np.array([[3, 7, 1, 9, 4, 2]])
    with tp.no_grad():
        if name in ("t5", "mt5"):
            out = model(input_ids=ids, decoder_input_ids=ids[:, :3])
            return out.logits.numpy()
        out = model(ids)
        return (out.logits if "logits" in out else out.last_hidden_state).numpy()


@pytest.mark.parametrize("name,auto", LOADERS)
@pytest.mark.parametrize("config", [dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
                                    dict(load_in_8bit=True)], ids=["nf4-double", "int8"])
def test_from_pretrained_quantizes_every_architecture(name, auto, config):
    cls = getattr(tp, auto)
    full = cls.from_pretrained(f"{FIXTURES}/{name}")
    q = cls.from_pretrained(f"{FIXTURES}/{name}", quantization_config=BitsAndBytesConfig(**config))
    layer_type = Linear4bit if config.get("load_in_4bit") else Linear8bitLt
    quantized = [n for n, m in q.named_modules() if isinstance(m, layer_type)]
    plain = [n for n, m in q.named_modules() if type(m) is tp.nn.Linear]
    assert quantized and all(q.get_submodule(n).weight.is_quantized() for n in quantized)
    out = q.get_output_embeddings() if hasattr(q, "get_output_embeddings") else None
    if out is not None:
        assert type(out) is tp.nn.Linear and out.weight.dtype == np.float32  # the head stays float32
    assert q.is_loaded_in_4bit == bool(config.get("load_in_4bit"))
    a, b = _outputs(q, name), _outputs(full, name)
    cos = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    assert cos > (0.999 if config.get("load_in_8bit") else 0.95), cos
    # each quantized layer holds what quantizing the float layer gives
    n0 = quantized[0]
    fw = full.get_submodule(n0).weight.data
    fw = fw.T if q.get_submodule(n0).weight.loads_transposed else fw
    ref = Params4bit(fw, quant_type="nf4", compress_statistics=True) if layer_type is Linear4bit else Int8Params(fw)
    assert np.array_equal(q.get_submodule(n0).weight.dequantize(), ref.dequantize())
    del plain


def test_skip_modules_stay_float32():
    cfg = BitsAndBytesConfig(load_in_4bit=True, llm_int8_skip_modules=["lm_head", "mlp"])
    q = tp.AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/llama", quantization_config=cfg)
    assert type(q.model.layers[0].mlp.up_proj) is tp.nn.Linear
    assert isinstance(q.model.layers[0].self_attn.q_proj, Linear4bit)


def test_saving_a_quantized_model_is_refused_clearly(tmp_path):
    q = tp.AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/llama",
                                                quantization_config=BitsAndBytesConfig(load_in_4bit=True))
    with pytest.raises(NotImplementedError, match="Save the adapter"):
        q.save_pretrained(tmp_path)
    assert not (tmp_path / "model.safetensors").exists()


def test_loading_quantized_never_holds_the_float32_model(tmp_path):
    import tracemalloc

    config = tp.AutoConfig.for_model("llama", vocab_size=128, hidden_size=256, intermediate_size=1024,
                                     num_hidden_layers=8, num_attention_heads=4)
    tp.manual_seed(0)
    tp.AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    linear_bytes = 8 * 4 * (4 * 256 * 256 + 3 * 256 * 1024)  # the float32 linear weights: 32 MiB
    tracemalloc.start()
    q = tp.AutoModelForCausalLM.from_pretrained(tmp_path, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert isinstance(q.model.layers[7].mlp.down_proj, Linear4bit)
    # the packed weights (1/8 of the float32 ones) plus one float32 tensor (1 MiB here) and its temporaries
    assert peak < 0.5 * linear_bytes, (peak, linear_bytes)
