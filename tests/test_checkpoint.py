"""Gradient checkpointing: the same gradients bit for bit (same dropout masks) on every architecture, the
random state left as without it, less activation memory, and the switches that turn it on."""
import tracemalloc

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.models.modeling_layers import GradientCheckpointingLayer
from tinypeft.utils.checkpoint import Checkpoint, checkpoint

FIXTURES = "tests/fixtures/models"
ARCHS = [("gpt2", "AutoModelForCausalLM"), ("opt", "AutoModelForCausalLM"), ("llama", "AutoModelForCausalLM"),
         ("bert", "AutoModelForSequenceClassification"), ("t5", "AutoModelForSeq2SeqLM"),
         ("mt5", "AutoModelForSeq2SeqLM"), ("whisper", "AutoModelForSpeechSeq2Seq")]


def _batch(name):
    ids = np.array([[3, 7, 1, 9, 4, 2, 8], [5, 5, 6, 7, 8, 1, 2]])
    if name == "bert":
        return dict(input_ids=ids, labels=np.array([0, 1]))
    if name == "whisper":
        feats = np.random.default_rng(0).standard_normal((2, 80, 3000)).astype(np.float32)
        return dict(input_features=feats, labels=ids)
    return dict(input_ids=ids, labels=ids)


def _grads(name, auto, checkpointing, method, seed_after=False):
    tp.manual_seed(0)
    model = getattr(tp.models.auto, auto).from_pretrained(f"{FIXTURES}/{name}")
    if method == "lora":
        cfg = tp.LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.2, init_lora_weights=False,
                            task_type="SEQ_CLS" if name == "bert" else None)
        model = tp.get_peft_model(model, cfg)
    if checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    tp.manual_seed(1)
    model(**_batch(name)).loss.backward()
    after = tp.creation.generator().random(3)  # the next draw: the random state backward leaves behind
    return {n: p.grad.numpy().copy() for n, p in model.named_parameters() if p.requires_grad}, after


@pytest.mark.parametrize("method", ["lora", "full"])
@pytest.mark.parametrize("name,auto", ARCHS)
def test_gradients_are_bit_identical_with_checkpointing(name, auto, method):
    plain, rng_plain = _grads(name, auto, False, method)
    ckpt, rng_ckpt = _grads(name, auto, True, method)
    assert plain.keys() == ckpt.keys() and len(plain) > 0
    for k in plain:
        if name in ("t5", "mt5", "whisper") and "decoder" not in k:
            # Encoder-decoders: the encoder's output feeds every decoder block's cross-attention, so its gradient is a sum over
            # blocks; checkpointed, each block's k and v shares are added first, a different grouping of the
            # same float32 sum. Everything upstream of that sum (the encoder) agrees to rounding only.
            assert np.allclose(plain[k], ckpt[k], rtol=1e-5, atol=1e-5 * np.abs(plain[k]).max()), k
        else:
            assert np.array_equal(plain[k], ckpt[k]), k
    assert np.array_equal(rng_plain, rng_ckpt)


def test_checkpointing_recomputes_each_block_once_in_backward():
    model = tp.AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/llama")
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    calls = []
    for layer in model.model.layers:
        forward = layer.forward
        layer.forward = lambda *a, _f=forward, **k: calls.append(1) or _f(*a, **k)
    model.train()
    ids = np.array([[1, 2, 3, 4]])
    loss = model(input_ids=ids, labels=ids).loss
    n = len(model.model.layers)
    assert len(calls) == n
    loss.backward()
    assert len(calls) == 2 * n  # recomputed, once each
    model.eval()
    model(input_ids=ids)
    assert len(calls) == 3 * n  # eval: no checkpoint
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing


def _peak_bytes(checkpointing):
    config = tp.AutoConfig.for_model("llama", vocab_size=64, hidden_size=64, intermediate_size=256,
                                     num_hidden_layers=6, num_attention_heads=4)
    tp.manual_seed(0)
    model = tp.AutoModelForCausalLM.from_config(config)
    if checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    ids = np.random.default_rng(0).integers(0, 64, size=(4, 96))
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    model(input_ids=ids, labels=ids).loss.backward()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def test_checkpointing_lowers_peak_activation_memory():
    plain, ckpt = _peak_bytes(False), _peak_bytes(True)
    assert ckpt < 0.6 * plain, (plain, ckpt)


def test_training_arguments_turn_checkpointing_on(tmp_path):
    model = tp.AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/gpt2")
    model = tp.get_peft_model(model, tp.LoraConfig(r=2, task_type="CAUSAL_LM"))
    data = tp.Dataset.from_dict({"input_ids": [[1, 2, 3, 4]] * 4, "labels": [[1, 2, 3, 4]] * 4})
    args = tp.TrainingArguments(output_dir=str(tmp_path), max_steps=1, gradient_checkpointing=True,
                                per_device_train_batch_size=2, save_strategy="no", disable_tqdm=True)
    tp.Trainer(model=model, args=args, train_dataset=data).train()
    blocks = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert blocks and all(b.gradient_checkpointing for b in blocks)


def test_unsupported_checkpointing_options_are_refused():
    model = tp.AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/gpt2")
    with pytest.raises(ValueError, match="preserves the random state"):
        model.gradient_checkpointing_enable({"preserve_rng_state": False})
    with pytest.raises(ValueError, match="use_reentrant only"):
        model.gradient_checkpointing_enable({"determinism_check": "none"})


def test_checkpoint_of_a_module_tracks_its_parameters_when_the_input_is_frozen():
    layer = tp.nn.Linear(3, 2)
    x = tp.ones(4, 3)  # no gradient: the parameters alone make the op part of the graph
    y = checkpoint(layer.__call__, x)
    assert isinstance(y._ctx, Checkpoint) or y._ctx is not None
    y.sum().backward()
    assert np.allclose(layer.bias.grad.numpy(), [4.0, 4.0]) and np.allclose(layer.weight.grad.numpy(), 4.0)
