"""The chat demo: its data, its metric, completion-only labels over the chat template, and (slow) the whole
run on SmolLM2-135M-Instruct: format compliance from under 10% to at least 90% on held-out questions."""
import json

import pytest

from tinypeft.demo.chat import correctness, encode_example, is_compliant
from tinypeft.demo.chat_data import make_chat_data


def test_data_is_seeded_and_held_out_questions_are_new():
    a, b = make_chat_data(seed=0), make_chat_data(seed=0)
    assert a == b and len(a["train"]) == 400 and len(a["test"]) == 45
    assert not {x["question"] for x in a["train"]} & {x["question"] for x in a["test"]}
    assert all(is_compliant(x["answer"]) for x in a["train"] + a["test"])
    assert any("backwards" in x["question"] for x in a["test"])
    assert not any("backwards" in x["question"] for x in a["train"])
    plus = [x for x in a["train"] if " plus " in x["question"]][0]
    x, y = [int(w) for w in plus["question"].removeprefix("What is ").removesuffix("?").split(" plus ")]
    assert json.loads(plus["answer"]) == {"answer": str(x + y)}


@pytest.mark.parametrize("text, ok", [
    ('{"answer": "Paris"}', True), (' {"answer": "4"}\n', True), ('{"answer": 4}', False),
    ('{"answer": "a", "why": "b"}', False), ('The answer is {"answer": "a"}', False), ("Paris", False),
])
def test_is_compliant(text, ok):
    assert is_compliant(text) is ok


def test_correctness_is_lenient_before_and_strict_after():
    want = ['{"answer": "Paris"}', '{"answer": "12"}']
    assert correctness(["The capital of France is Paris.", "It is 13."], want) == 0.5
    assert correctness(['{"answer": "paris"}', '{"answer": "13"}'], want) == 0.5


def test_completion_only_labels(tmp_path):
    pytest.importorskip("gguf")
    from test_gguf import reference_model, write_tiny_gguf

    from tinypeft.tokenization import AutoTokenizer

    write_tiny_gguf(tmp_path / "t.gguf", reference_model())
    tok = AutoTokenizer.from_pretrained(tmp_path)
    ids, labels = encode_example(tok, "hello", '{"answer": "world"}')
    prompt = tok.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True,
                                     return_dict=False)
    assert ids[:len(prompt)] == prompt and labels[:len(prompt)] == [-100] * len(prompt)
    assert labels[len(prompt):] == ids[len(prompt):] and ids[-1] == tok.eos_token_id
    assert tok.decode(ids[len(prompt):]) == '{"answer": "world"}<|im_end|>'


@pytest.mark.slow
def test_chat_demo_teaches_the_format(tmp_path):
    from tinypeft.demo.chat import run_chat_demo

    result = run_chat_demo(output_dir=tmp_path / "out", log=print)
    assert result["compliance_before"] < 0.1
    assert result["compliance_after"] >= 0.9
    assert result["reloaded_equal"]
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
