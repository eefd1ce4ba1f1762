"""`tinypeft chat` on the tiny GGUF model of test_gguf.py: one-shot --prompt, the interactive loop with
history, /reset and /exit, streaming equal to generate(), and clear errors for bad arguments."""
import io

import pytest

pytest.importorskip("gguf")
pytest.importorskip("jinja2")

from test_gguf import reference_model, write_tiny_gguf  # noqa: E402

from tinypeft.cli import main  # noqa: E402
from tinypeft.cli_chat import Chat, load_chat_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("chat")
    write_tiny_gguf(d / "tiny.gguf", reference_model())
    return d


def test_streamed_answer_is_generates_answer(tiny_dir):
    model, tok = load_chat_model(str(tiny_dir))
    enc = tok.apply_chat_template([{"role": "user", "content": "hello world"}], add_generation_prompt=True,
                                  return_tensors="np")
    full = model.generate(enc["input_ids"], max_new_tokens=12).numpy()[0, enc["input_ids"].shape[1]:]
    out = io.StringIO()
    answer = Chat(model, tok, max_new_tokens=12).say("hello world", out=out)
    assert answer == tok.decode(full, skip_special_tokens=True)
    assert out.getvalue() == answer + "\n"


def test_history_and_reset(tiny_dir):
    model, tok = load_chat_model(str(tiny_dir))
    chat = Chat(model, tok, system="be nice", max_new_tokens=4)
    out = io.StringIO()
    first = chat.say("hello", out=out)
    chat.say("world")
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert chat.messages[2]["content"] == first and out.getvalue() == first + "\n"
    chat.reset()
    assert chat.messages == [{"role": "system", "content": "be nice"}]


def test_one_shot_prompt(tiny_dir, capsys):
    assert main(["chat", "--model", str(tiny_dir), "--prompt", "hello", "--max-new-tokens", "5"]) == 0
    model, tok = load_chat_model(str(tiny_dir))
    expected = Chat(model, tok, max_new_tokens=5).say("hello")
    assert capsys.readouterr().out == expected + "\n"


def test_interactive_loop(tiny_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n\n/reset\nworld\n/exit\nnever read\n"))
    assert main(["chat", "--model", str(tiny_dir), "--max-new-tokens", "3"]) == 0
    captured = capsys.readouterr()
    assert "[conversation reset]" in captured.err
    assert captured.out.count("> ") == 5  # hello, the empty line, /reset, world, /exit; the rest unread


def test_end_of_input_leaves(tiny_dir, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    assert main(["chat", "--model", str(tiny_dir), "--max-new-tokens", "2"]) == 0


def test_bad_model_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["chat", "--model", str(tmp_path / "nowhere"), "--prompt", "x"])
    assert e.value.code == 2
    assert "argument --model" in capsys.readouterr().err
