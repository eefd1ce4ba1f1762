"""Options are done or refused, never silently ignored (issue 16, friction 4): from_pretrained's
torch_dtype / dtype, and a keyword argument no forward takes (model(**inputs, banana=3))."""
from pathlib import Path

import numpy as np
import pytest

from tinypeft import models
from tinypeft.models import bert, gpt2, llama, opt, t5, whisper
from tinypeft.peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig, get_peft_model

FIXTURES = Path(__file__).parent / "fixtures" / "models"
IDS = np.array([[1, 2, 3, 4]])

# (fixture, class, inputs): every architecture, base model and heads
CASES = [
    ("gpt2", gpt2.GPT2Model, {}), ("gpt2", gpt2.GPT2LMHeadModel, {}),
    ("gpt2", gpt2.GPT2ForSequenceClassification, {}),
    ("opt", opt.OPTModel, {}), ("opt", opt.OPTForCausalLM, {}), ("opt", opt.OPTForSequenceClassification, {}),
    ("llama", llama.LlamaModel, {}), ("llama", llama.LlamaForCausalLM, {}),
    ("llama", llama.LlamaForSequenceClassification, {}),
    ("bert", bert.BertModel, {}), ("bert", bert.BertForSequenceClassification, {}),
    ("bert", bert.BertForTokenClassification, {}), ("bert", bert.BertForQuestionAnswering, {}),
    ("t5", t5.T5Model, {"decoder_input_ids": IDS}), ("t5", t5.T5ForConditionalGeneration, {"decoder_input_ids": IDS}),
    ("t5", t5.T5EncoderModel, {}),
]


def whisper_case():
    config = whisper.WhisperConfig.from_pretrained(FIXTURES / "whisper")
    features = np.zeros((1, config.num_mel_bins, 2 * config.max_source_positions), np.float32)
    return {"input_features": features, "decoder_input_ids": np.array([[config.decoder_start_token_id]])}


def load(fixture, cls):
    model = cls.from_pretrained(FIXTURES / fixture)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = 0
    return model


@pytest.mark.parametrize("fixture,cls,extra", CASES, ids=[c[1].__name__ for c in CASES])
def test_an_unknown_forward_argument_is_a_type_error_naming_it(fixture, cls, extra):
    model = load(fixture, cls)
    inputs = {"input_ids": IDS, "attention_mask": np.ones_like(IDS), **extra}
    model(**inputs)  # the real arguments are taken
    model(**inputs, return_dict=True, output_attentions=False, output_hidden_states=False)  # the defaults too
    with pytest.raises(TypeError, match="banana"):
        model(**inputs, banana=3)


@pytest.mark.parametrize("cls", [whisper.WhisperModel, whisper.WhisperForConditionalGeneration])
def test_whisper_refuses_an_unknown_forward_argument(cls):
    model = cls.from_pretrained(FIXTURES / "whisper")
    model(**whisper_case())
    with pytest.raises(TypeError, match="banana"):
        model(**whisper_case(), banana=3)


@pytest.mark.parametrize("option,value", [("output_attentions", True), ("output_hidden_states", True),
                                          ("return_dict", False)])
@pytest.mark.parametrize("cls", [gpt2.GPT2LMHeadModel, bert.BertForSequenceClassification])
def test_an_output_switch_tinypeft_cannot_honour_is_refused_by_name(cls, option, value):
    model = load("gpt2" if cls is gpt2.GPT2LMHeadModel else "bert", cls)
    with pytest.raises(NotImplementedError, match=f"{option}={value}"):
        model(input_ids=IDS, **{option: value})


@pytest.mark.parametrize("config", [LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["c_attn"],
                                               fan_in_fan_out=True),
                                    PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2)],
                         ids=["lora", "prompt_tuning"])
def test_peft_model_wrappers_refuse_an_unknown_forward_argument(config):
    model = get_peft_model(load("gpt2", gpt2.GPT2LMHeadModel), config)
    model(input_ids=IDS, labels=IDS)
    with pytest.raises(TypeError, match="banana"):
        model(input_ids=IDS, labels=IDS, banana=3)


@pytest.mark.parametrize("config", [PrefixTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=2),
                                    PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=2),
                                    LoraConfig(task_type="SEQ_2_SEQ_LM", r=2, target_modules=["q", "v"]),
                                    IA3Config(task_type="SEQ_2_SEQ_LM", target_modules=["k", "wo"],
                                              feedforward_modules=["wo"])],
                         ids=["prefix_tuning", "prompt_tuning", "lora", "ia3"])
def test_peft_seq2seq_wrappers_refuse_an_unknown_forward_argument(config):
    model = get_peft_model(load("t5", t5.T5ForConditionalGeneration), config)
    model(input_ids=IDS, labels=IDS)
    with pytest.raises(TypeError, match="banana"):
        model(input_ids=IDS, labels=IDS, banana=3)


def test_peft_seq_cls_wrapper_refuses_an_unknown_forward_argument():
    config = LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query", "value"])
    model = get_peft_model(load("bert", bert.BertForSequenceClassification), config)
    model(input_ids=IDS, labels=np.array([1]))
    with pytest.raises(TypeError, match="banana"):
        model(input_ids=IDS, banana=3)


# ----------------------------------------------------------------------------- torch_dtype / dtype

@pytest.mark.parametrize("key", ["torch_dtype", "dtype"])
@pytest.mark.parametrize("value", ["float32", "auto", np.float32, None])
def test_float32_and_auto_load_as_float32(key, value):
    model = models.AutoModelForCausalLM.from_pretrained(FIXTURES / "gpt2", **{key: value})
    assert model.dtype == np.float32


@pytest.mark.parametrize("key", ["torch_dtype", "dtype"])
@pytest.mark.parametrize("value", ["float16", "bfloat16", np.float16, "float64"])
def test_another_dtype_is_refused_naming_the_argument_and_what_to_use(key, value):
    with pytest.raises(ValueError, match=rf"from_pretrained\({key}=.*float32 only.*{key}=\"float32\""):
        models.AutoModelForCausalLM.from_pretrained(FIXTURES / "gpt2", **{key: value})


def test_auto_peft_model_refuses_float16_too(tmp_path):
    from tinypeft import AutoPeftModelForCausalLM

    model = get_peft_model(load("gpt2", gpt2.GPT2LMHeadModel),
                           LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="torch_dtype='float16'"):
        AutoPeftModelForCausalLM.from_pretrained(tmp_path, torch_dtype="float16")
