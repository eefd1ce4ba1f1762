"""Checks for tutorials/08_methods_compared.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _array, _close, _exercise


def _real_count(config, method, options):
    from tinypeft import IA3Config, LoraConfig, PromptEncoderConfig, PromptTuningConfig, get_peft_model
    from tinypeft.models.bert import BertForSequenceClassification

    make = {
        "lora": lambda: LoraConfig(task_type="SEQ_CLS", r=options.get("r", 8)),
        "ia3": lambda: IA3Config(task_type="SEQ_CLS"),
        "prompt_tuning": lambda: PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=options["num_virtual_tokens"]),
        "p_tuning": lambda: PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=options["num_virtual_tokens"],
                                                encoder_hidden_size=options["encoder_hidden_size"]),
    }
    model = BertForSequenceClassification(config)  # (IA3 cannot wrap init_empty_weights placeholders yet)
    trainable = get_peft_model(model, make[method]()).get_nb_trainable_parameters()[0]
    head = config.hidden_size * config.num_labels + config.num_labels
    return trainable - head


@_exercise
def check_method_param_count(method_param_count):
    """method_param_count(config, method, **options) against get_peft_model (minus the classifier) on several BERTs."""
    from tinypeft.models.bert import BertConfig

    configs = [BertConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=12,
                          vocab_size=100),
               BertConfig(hidden_size=40, intermediate_size=72, num_hidden_layers=3, num_attention_heads=4,
                          vocab_size=100)]
    cases = [("lora", {"r": 8}), ("lora", {"r": 3}), ("ia3", {}), ("prompt_tuning", {"num_virtual_tokens": 7}),
             ("p_tuning", {"num_virtual_tokens": 5, "encoder_hidden_size": 24})]
    for config in configs:
        for method, options in cases:
            want = _real_count(config, method, options)
            got = method_param_count(config, method, **options)
            assert got is not None, "method_param_count returned None; return the count"
            assert int(got) == want, (f"{method} {options} on a BERT of width {config.hidden_size}, ff "
                                      f"{config.intermediate_size}, {config.num_hidden_layers} layers: got {int(got):,d}, "
                                      f"get_peft_model trains {want:,d} (classifier excluded)")


@_exercise
def check_ia3_merge(ia3_merge):
    """ia3_merge(W, b, l, feedforward) -> (W', b') giving the IA3 layer's output; W and b untouched."""
    rng = np.random.default_rng(8)
    d_in, d_out = 6, 4
    x = rng.standard_normal((5, d_in))
    W, b = rng.standard_normal((d_out, d_in)), rng.standard_normal(d_out)
    for feedforward in (False, True):
        for bias in (b, None):
            l = rng.uniform(0.5, 1.5, d_in if feedforward else d_out)
            bb = 0.0 if bias is None else bias
            want = (x * l) @ W.T + bb if feedforward else (x @ W.T + bb) * l
            W0, b0 = W.copy(), None if bias is None else bias.copy()
            got = ia3_merge(W, bias, l, feedforward)
            assert got is not None and len(got) == 2, "return the pair (W', b')"
            W2, b2 = got
            kind = "feed-forward (input scaled)" if feedforward else "output scaled"
            assert np.array_equal(W, W0) and (bias is None or np.array_equal(bias, b0)), f"{kind}: W or b changed in place"
            W2 = _array(W2, f"{kind}: W'")
            assert W2.shape == W.shape, f"{kind}: W' has shape {W2.shape}, W has {W.shape}"
            out = x @ W2.T + (0.0 if b2 is None else np.asarray(b2))
            _close(out, want, f"{kind}, bias {'yes' if bias is not None else 'none'}: output of the merged layer",
                   rtol=1e-10, atol=1e-10)
