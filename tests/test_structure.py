"""The wiring a reader follows: public names listed, Tensor methods where go-to-definition finds them."""
import inspect

import pytest

import tinypeft as tp
import tinypeft.peft


def test_every_public_name_is_imported_explicitly_and_listed_in_all():
    assert len(tp.__all__) == len(set(tp.__all__))
    assert [n for n in tp.__all__ if not hasattr(tp, n)] == []
    peft_names = {k for k in vars(tinypeft.peft) if k[0].isupper() or k == "get_peft_model"}
    assert peft_names - set(tp.__all__) == set()
    source = inspect.getsource(tp)
    assert "globals()" not in source and "import *" not in source


@pytest.mark.parametrize("name", ["sum", "mean", "max", "view", "reshape", "transpose", "softmax", "exp", "__add__",
                                  "__matmul__", "__getitem__", "masked_fill", "T"])
def test_tensor_methods_are_written_in_the_class_body(name):
    # go-to-definition on x.sum must land in tensor.py, one line from the op it calls
    assert name in tp.Tensor.__dict__
    member = tp.Tensor.__dict__[name]
    fn = member.fget if isinstance(member, property) else member
    assert inspect.getsourcefile(fn).endswith("tensor.py")



def test_prompt_learning_is_its_own_class_in_front_of_the_task_class():
    from tinypeft.models.gpt2 import GPT2Config, GPT2LMHeadModel
    from tinypeft.peft.prompt_learning import PromptLearningMixin

    def base():
        return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=20, n_positions=16))

    prompt = tp.get_peft_model(base(), tp.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    lora = tp.get_peft_model(base(), tp.LoraConfig(task_type="CAUSAL_LM", target_modules=["c_attn"],
                                                   fan_in_fan_out=True))
    assert type(prompt).__name__ == type(lora).__name__ == "PeftModelForCausalLM"
    assert isinstance(prompt, tp.PeftModelForCausalLM) and isinstance(prompt, PromptLearningMixin)
    assert not isinstance(lora, PromptLearningMixin)
    assert type(prompt) is type(tp.get_peft_model(base(), tp.PromptTuningConfig(task_type="CAUSAL_LM",
                                                                                  num_virtual_tokens=2)))
    assert prompt.get_base_model() is prompt.base_model and lora.get_base_model() is lora.base_model.model
