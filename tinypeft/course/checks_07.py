"""Checks for tutorials/07_quicktour.md's exercises (see checking.py for how checks behave)."""
import contextlib
import io

from .checking import _exercise
from .files import path as course_file

GPT2 = "tests/fixtures/models/gpt2"  # a tiny GPT-2 whose lm_head shares the token embedding's weight


def _printed_line(peft_model):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        peft_model.print_trainable_parameters()
    return buf.getvalue().strip()


@_exercise
def check_trainable_line(trainable_line):
    """trainable_line(model) == the line print_trainable_parameters prints, on tied GPT-2s under two methods."""
    from tinypeft import AutoModelForCausalLM, LoraConfig, PromptTuningConfig, get_peft_model

    configs = {
        "LoRA": LoraConfig(task_type="CAUSAL_LM", r=4, fan_in_fan_out=True),
        "prompt tuning": PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5),
    }
    for name, config in configs.items():
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(course_file(GPT2)), config)
        want = _printed_line(model)
        got = trainable_line(model)
        assert isinstance(got, str), f"{name}: return the line as a str, got {type(got).__name__}"
        got = got.strip()
        if got != want:
            hint = ""
            if got.split("||")[0] == want.split("||")[0]:
                hint = " (the trainable count is right; is the tied lm_head / wte weight counted twice?)"
            raise AssertionError(f"{name}:\n  got  {got!r}\n  want {want!r}{hint}")


def _real_count(config, r, targets):
    from tinypeft import LoraConfig, get_peft_model
    from tinypeft.models.t5 import T5ForConditionalGeneration
    from tinypeft.nn import init_empty_weights

    with init_empty_weights():
        model = T5ForConditionalGeneration(config)
    model = get_peft_model(model, LoraConfig(task_type="SEQ_2_SEQ_LM", r=r, target_modules=list(targets)))
    return model.get_nb_trainable_parameters()[0]


@_exercise
def check_mt5_lora_count(mt5_lora_count):
    """mt5_lora_count(config, r, targets) against get_peft_model on models built under init_empty_weights."""
    from tinypeft.models.t5 import MT5Config, T5Config

    mt0_large = MT5Config(d_model=1024, d_ff=2816, num_layers=24, num_decoder_layers=24, num_heads=16, d_kv=64,
                          vocab_size=250112, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    small_t5 = T5Config(d_model=48, d_ff=80, num_layers=3, num_decoder_layers=2, num_heads=3, d_kv=20,
                        vocab_size=100, feed_forward_proj="relu")
    odd_mt5 = MT5Config(d_model=40, d_ff=72, num_layers=2, num_decoder_layers=3, num_heads=2, d_kv=12,
                        vocab_size=100, feed_forward_proj="gated-gelu")
    cases = [
        (mt0_large, 8, ["q", "v"]),  # the quicktour: 2,359,296
        (small_t5, 4, ["q", "k", "v", "o"]),  # inner = 60 != d_model: o maps the other way
        (small_t5, 2, ["wi", "wo"]),
        (odd_mt5, 3, ["wi_0", "wi_1", "wo", "o"]),
        (mt0_large, 16, ["k", "wo"]),
    ]
    for config, r, targets in cases:
        want = _real_count(config, r, targets)
        got = mt5_lora_count(config, r, list(targets))
        assert got is not None, "mt5_lora_count returned None; return the count"
        what = (f"{type(config).__name__}(d_model={config.d_model}, d_ff={config.d_ff}, heads*d_kv="
                f"{config.num_heads * config.d_kv}, layers {config.num_layers}+{config.num_decoder_layers}), "
                f"r={r}, targets={targets}")
        assert int(got) == want, f"{what}: got {int(got):,d}, get_peft_model counts {want:,d}"
