"""Chat templates rendered as transformers renders them (sandboxed Jinja2), and their bad inputs.

SMOLLM2_RENDERED is the string transformers 5.24 gives for SmolLM2-135M-Instruct's template (the one in
its GGUF file and its tokenizer_config.json); the live comparison is in tests/test_gguf_parity.py.
"""
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jinja2")  # the optional extra tinypeft[chat]; CI installs it with the test extra

from tinypeft.chat_template import ChatTemplateError, render_chat_template  # noqa: E402
from tinypeft.tokenization import AutoTokenizer  # noqa: E402

BPE_DIR = Path(__file__).parent / "fixtures" / "tokenizers" / "bpe"

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SMOLLM2_RENDERED = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_smollm2_template_string():
    assert render_chat_template(SMOLLM2_TEMPLATE, QUESTION, add_generation_prompt=True) == SMOLLM2_RENDERED
    assert render_chat_template(SMOLLM2_TEMPLATE, QUESTION) == SMOLLM2_RENDERED.removesuffix("<|im_start|>assistant\n")
    own = [{"role": "system", "content": "Be brief."}] + QUESTION
    assert render_chat_template(SMOLLM2_TEMPLATE, own).startswith("<|im_start|>system\nBe brief.<|im_end|>\n")


def test_trim_blocks_lstrip_blocks_and_loop_controls():
    template = "{% for m in messages %}\n    {% if m['role'] == 'system' %}{% continue %}{% endif %}\n[{{ m['content'] }}]\n{% endfor %}"
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert render_chat_template(template, msgs) == "[u]\n"


def test_tojson_keeps_non_ascii_and_html():
    out = render_chat_template("{{ messages[0] | tojson }}", [{"role": "user", "content": "café <b>"}])
    assert out == json.dumps({"role": "user", "content": "café <b>"}, ensure_ascii=False)


def test_special_tokens_and_extra_variables_reach_the_template():
    tok = AutoTokenizer.from_pretrained(BPE_DIR)
    tok.chat_template = "{{ bos_token }}|{{ eos_token }}|{{ name }}|{{ messages[0]['content'] }}"
    out = tok.apply_chat_template(QUESTION[:1], tokenize=False, name="tiny")
    assert out == f"{tok.bos_token}|{tok.eos_token}|tiny|What is the capital of France?"


def test_tokenize_returns_the_encoding(tmp_path):
    tok = AutoTokenizer.from_pretrained(BPE_DIR)
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    text = tok.apply_chat_template(QUESTION, tokenize=False)
    enc = tok.apply_chat_template(QUESTION)
    assert enc["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
    assert tok.apply_chat_template(QUESTION, return_dict=False) == enc["input_ids"]
    arr = tok.apply_chat_template(QUESTION, return_tensors="np")["input_ids"]
    assert isinstance(arr, np.ndarray) and arr.shape == (1, len(enc["input_ids"]))
    batch = tok.apply_chat_template([QUESTION, QUESTION[:1]], tokenize=False)
    assert batch == [text, text]


def test_template_read_from_tokenizer_config_and_jinja_file(tmp_path):
    tok = AutoTokenizer.from_pretrained(BPE_DIR)
    tok.chat_template = SMOLLM2_TEMPLATE
    tok.save_pretrained(tmp_path / "a")
    assert json.loads((tmp_path / "a" / "tokenizer_config.json").read_text())["chat_template"] == SMOLLM2_TEMPLATE
    assert AutoTokenizer.from_pretrained(tmp_path / "a").apply_chat_template(QUESTION, tokenize=False) == \
        render_chat_template(SMOLLM2_TEMPLATE, QUESTION)
    plain = AutoTokenizer.from_pretrained(BPE_DIR)
    plain.save_pretrained(tmp_path / "b")
    (tmp_path / "b" / "chat_template.jinja").write_text("J:{{ messages[0]['content'] }}", encoding="utf-8")
    assert AutoTokenizer.from_pretrained(tmp_path / "b").apply_chat_template(QUESTION, tokenize=False) == \
        "J:What is the capital of France?"


def test_continue_final_message():
    msgs = QUESTION + [{"role": "assistant", "content": "The capital is"}]
    out = render_chat_template(SMOLLM2_TEMPLATE, msgs, continue_final_message=True)
    assert out.endswith("<|im_start|>assistant\nThe capital is")
    with pytest.raises(ValueError, match="cannot be used together"):
        render_chat_template(SMOLLM2_TEMPLATE, msgs, add_generation_prompt=True, continue_final_message=True)


# ---------------------------------------------------------------------------------------------- bad input

def test_unknown_role():
    with pytest.raises(ValueError, match=r"message 1 has role 'assistent'.*user"):
        render_chat_template(SMOLLM2_TEMPLATE, QUESTION + [{"role": "assistent", "content": "x"}])


def test_messages_that_are_not_messages():
    with pytest.raises(ValueError, match="non-empty list"):
        render_chat_template(SMOLLM2_TEMPLATE, [])
    with pytest.raises(TypeError, match="message 0 is a str"):
        render_chat_template(SMOLLM2_TEMPLATE, ["hello"])


def test_template_that_raises():
    template = "{% if messages[0]['role'] != 'system' %}{{ raise_exception('Conversations must start with a system message') }}{% endif %}"
    with pytest.raises(ChatTemplateError, match="refused this conversation: Conversations must start with a system"):
        render_chat_template(template, QUESTION)
    with pytest.raises(ChatTemplateError, match="does not parse"):
        render_chat_template("{% for m in messages %}", QUESTION)
    with pytest.raises(ChatTemplateError, match="failed"):
        render_chat_template("{{ messages[0]['content'] + 1 }}", QUESTION)


def test_no_template():
    tok = AutoTokenizer.from_pretrained(BPE_DIR)
    with pytest.raises(ValueError, match="no chat template"):
        tok.apply_chat_template(QUESTION)


def test_sandbox_reads_private_attributes_as_undefined():
    assert render_chat_template("[{{ messages.__class__ }}{{ messages[0].__dict__ }}]", QUESTION) == "[]"


@pytest.mark.parametrize("template", [
    "{{ messages.append(1) }}", "{{ cycler.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__ }}", "{% set ns = namespace(_x=1) %}", "{{ messages[0].update({'a': 1}) }}",
])
def test_sandbox_gives_templates_nothing_but_their_variables(template):
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(ChatTemplateError):
        render_chat_template(template, msgs)
    assert msgs == [{"role": "user", "content": "hi"}]  # and the caller's messages are untouched
