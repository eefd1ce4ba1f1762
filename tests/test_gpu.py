"""The CuPy path: the same ops on the GPU give the same numbers and gradients as on NumPy.

The default suite only checks the clear error without CUDA; `pytest -m gpu` runs the rest on a machine
with CUDA and cupy.
"""
import importlib.util

import numpy as np
import pytest

import tinypeft as tp
from tinypeft import backend


def _cuda_usable():
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def test_cuda_without_cupy_or_a_gpu_is_a_clear_error():
    if _cuda_usable():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="cupy|CuPy|CUDA"):
        tp.set_device("cuda")
    assert tp.get_device() == "cpu"


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="cpu' or 'cuda"):
        tp.set_device("tpu")


@pytest.fixture
def cuda():
    if not _cuda_usable():
        pytest.skip("needs CUDA and cupy")
    tp.set_device("cuda")
    yield
    tp.set_device("cpu")


@pytest.mark.gpu
def test_tensors_live_on_the_gpu(cuda):
    import cupy

    x = tp.randn(4, 5)
    assert isinstance(x.data, cupy.ndarray) and x.device == "cuda" and x.xp is cupy
    assert isinstance(x.numpy(), np.ndarray)


@pytest.mark.gpu
def test_forward_and_backward_match_numpy(cuda):
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((3, 4, 5)), rng.standard_normal((5, 6))

    def run():
        a = tp.tensor(a_np, requires_grad=True)
        b = tp.tensor(b_np, requires_grad=True)
        y = tp.gelu(a @ b).tanh()
        loss = (y.exp() * y.sigmoid()).mean() + tp.amax(y, 1).sum()
        loss.backward()
        return loss.item(), a.grad.numpy(), b.grad.numpy()

    gpu = run()
    tp.set_device("cpu")
    cpu = run()
    for g, c in zip(gpu, cpu):
        np.testing.assert_allclose(g, c, rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
def test_gradcheck_on_the_gpu(cuda):
    x = tp.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    assert backend.xp_of(x.data).__name__ == "cupy"
    assert tp.testing.gradcheck(lambda t: (t * t).softmax(-1) if hasattr(t, "softmax") else t * t, [x])


def _lora_step(name, device, seed=0):
    """One LoRA training step (forward, backward, AdamW) on a tiny fixture model, on `device`."""
    from tinypeft import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModel
    from tinypeft.optim import AdamW
    from tinypeft.peft import LoraConfig, get_peft_model

    tp.set_device(device)
    try:
        auto = {"t5": AutoModelForSeq2SeqLM, "bert": AutoModel}.get(name, AutoModelForCausalLM)
        model = auto.from_pretrained(f"tests/fixtures/models/{name}").to(device)
        targets = {"gpt2": ["c_attn"], "bert": ["query", "value"], "t5": ["q", "v"]}.get(name, ["q_proj", "v_proj"])
        pm = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
        rng = np.random.default_rng(seed)
        for n, p in pm.named_parameters():
            if "lora_" in n:  # the same A and B on both devices (each device has its own RNG); B != 0 so A learns
                p.data = backend.to_device(rng.standard_normal(p.shape).astype(np.float32) * 0.1, device)
        ids = np.array([[5, 6, 7, 8, 9, 3], [10, 11, 12, 13, 0, 0]])
        mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
        if name == "t5":
            out = pm(input_ids=ids, attention_mask=mask, labels=ids[:, :4])
        elif name == "bert":
            out = pm(input_ids=ids, attention_mask=mask)
            out.loss = (out.last_hidden_state * out.last_hidden_state).mean()
        else:
            out = pm(input_ids=ids, attention_mask=mask, labels=ids)
        out.loss.backward()
        trainable = [p for p in pm.parameters() if p.requires_grad]
        grads = [p.grad.numpy().copy() for p in trainable]
        AdamW(trainable, lr=1e-2).step()
        return out.loss.item(), grads, [p.detach().numpy().copy() for p in trainable]
    finally:
        tp.set_device("cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["gpt2", "llama", "opt", "bert", "t5"])
def test_a_lora_step_on_a_whole_model_matches_the_cpu(cuda, name):
    gpu = _lora_step(name, "cuda")
    cpu = _lora_step(name, "cpu")
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-5)
    for g, c in zip(gpu[1], cpu[1]):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-6)
    for g, c in zip(gpu[2], cpu[2]):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_greedy_generation_on_the_gpu_matches_the_cpu(cuda):
    from tinypeft import AutoModelForCausalLM

    def generate(device):
        tp.set_device(device)
        try:
            model = AutoModelForCausalLM.from_pretrained("tests/fixtures/models/llama").to(device)
            out = model.generate(np.array([[5, 6, 7, 8]]), max_new_tokens=12, do_sample=False)
            return backend.to_device(getattr(out, "data", out), "cpu")
        finally:
            tp.set_device("cpu")

    np.testing.assert_array_equal(generate("cuda"), generate("cpu"))


# One config per method on PEFT's MLP (rows of PEFT's custom-model table); the adapter's weights are random.
METHODS = {
    "lora": ("LoraConfig", {"target_modules": ["lin0"], "init_lora_weights": False}),
    "dora": ("LoraConfig", {"target_modules": ["lin0", "lin1"], "use_dora": True, "init_lora_weights": False}),
    "ia3": ("IA3Config", {"target_modules": ["lin0"], "feedforward_modules": ["lin0"], "init_ia3_weights": False}),
    "loha": ("LoHaConfig", {"target_modules": ["lin0"], "init_weights": False}),
    "lokr": ("LoKrConfig", {"target_modules": ["lin0"], "init_weights": False}),
    "vera": ("VeraConfig", {"target_modules": ["lin0"], "init_weights": False}),
    "oft": ("OFTConfig", {"r": 2, "oft_block_size": 0, "target_modules": ["lin0"], "init_weights": False}),
    "boft": ("BOFTConfig", {"target_modules": ["lin1"], "boft_block_size": 2, "init_weights": False}),
    "hra": ("HRAConfig", {"target_modules": ["lin0"], "init_weights": False}),
    "miss": ("MissConfig", {"target_modules": ["lin0"], "r": 2, "init_weights": False}),
    "fourierft": ("FourierFTConfig", {"n_frequency": 10, "target_modules": ["lin0"], "init_weights": True}),
    "hira": ("HiraConfig", {"target_modules": ["lin0"], "init_weights": False}),
    "waveft": ("WaveFTConfig", {"target_modules": ["lin0"], "n_frequency": 8, "init_weights": False}),
    "c3a": ("C3AConfig", {"block_size": 2, "target_modules": ["lin0"], "init_weights": True}),
    "delora": ("DeloraConfig", {"target_modules": ["lin0"], "init_weights": False}),
    "gralora": ("GraloraConfig", {"target_modules": ["lin0"], "init_weights": False}),
    "road": ("RoadConfig", {"target_modules": ["lin0"], "group_size": 2, "init_weights": False}),
    "randlora": ("RandLoraConfig", {"target_modules": ["lin0"], "randlora_alpha": 1, "init_weights": False}),
}


def _method_step(method, device):
    """Forward and backward of PEFT's MLP with one method's adapter, built on the CPU and moved to `device`."""
    import sys

    sys.path.insert(0, "tests")
    from custom_models import MLP, inputs

    from tinypeft import peft

    config_name, kwargs = METHODS[method]
    tp.set_device("cpu")
    tp.manual_seed(0)
    model = peft.get_peft_model(MLP().eval(), getattr(peft, config_name)(**kwargs))
    rng = np.random.default_rng(1)
    for p in model.parameters():
        if p.requires_grad:  # the same nonzero values on both devices (the adapters' own inits differ by RNG)
            p.data = p.data + rng.standard_normal(p.shape).astype(p.data.dtype) * 0.1
    model = model.to(device)
    tp.set_device(device)
    try:
        x = inputs("MLP").to(device) / 90
        out = model(x)
        (out * out).sum().backward()
        trainable = [p for p in model.parameters() if p.requires_grad]
        with tp.no_grad():
            merged = model.merge_and_unload()(x)
        return out.detach().numpy(), [p.grad.numpy() for p in trainable], merged.numpy()
    finally:
        tp.set_device("cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_gives_the_cpus_outputs_gradients_and_merge_on_the_gpu(cuda, method):
    gpu, cpu = _method_step(method, "cuda"), _method_step(method, "cpu")
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-5, atol=1e-6)
    for g, c in zip(gpu[1], cpu[1]):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu[2], cpu[2], rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("moved", [False, True], ids=["made-there", "moved-there"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_builds_its_adapter_on_the_gpu(cuda, method, moved):
    """get_peft_model on a model on the GPU, made there or moved there with .to("cuda") while new tensors go to
    the CPU: the adapter's weights are put there too (as PEFT does), and train."""
    import sys

    import cupy

    sys.path.insert(0, "tests")
    from custom_models import MLP, inputs

    from tinypeft import peft

    config_name, kwargs = METHODS[method]
    if moved:
        tp.set_device("cpu")
    model = peft.get_peft_model(MLP().eval().to("cuda"), getattr(peft, config_name)(**kwargs))
    tp.set_device("cuda")
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(isinstance(p.data, cupy.ndarray) for p in model.parameters())
    out = model(inputs("MLP").to("cuda") / 90)
    (out * out).sum().backward()
    assert all(isinstance(p.grad.data, cupy.ndarray) and bool(cupy.isfinite(p.grad.data).all()) for p in trainable)
