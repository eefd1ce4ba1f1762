"""from_pretrained(gguf_file=..., quantization_config=...): a GGUF model's linear layers re-quantized as each
tensor is dequantized from its GGUF blocks, equal to quantizing the float32 GGUF model's weights."""
import numpy as np
import pytest

pytest.importorskip("gguf")  # the optional extra tinypeft[gguf], as tests/test_gguf.py

import tinypeft as tp  # noqa: E402
from test_gguf import reference_model, write_tiny_gguf  # noqa: E402
from tinypeft.quantization import BitsAndBytesConfig, Linear4bit, Params4bit  # noqa: E402


def test_gguf_source_loads_quantized(tmp_path):
    write_tiny_gguf(tmp_path / "tiny.Q8_0.gguf", reference_model())
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)
    q = tp.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.Q8_0.gguf", quantization_config=cfg)
    f = tp.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.Q8_0.gguf")
    layers = [n for n, m in q.named_modules() if isinstance(m, Linear4bit)]
    assert layers and q.is_loaded_in_4bit
    for n in layers:  # the float32 values from the GGUF blocks, quantized to NF4
        ref = Params4bit(f.get_submodule(n).weight.data, quant_type="nf4", compress_statistics=True)
        assert np.array_equal(q.get_submodule(n).weight.dequantize(), ref.dequantize()), n
    ids = np.array([[1, 2, 3, 4]])
    with tp.no_grad():
        a, b = q(input_ids=ids).logits.numpy(), f(input_ids=ids).logits.numpy()
    assert (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()) > 0.85  # a tiny random model: 4 bits are coarse
