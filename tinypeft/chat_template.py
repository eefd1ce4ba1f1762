"""Chat templates: a model's Jinja template turns a list of messages into the one string it was trained on.

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\\n<|im_start|>user\\n
    #  What is the capital of France?<|im_end|>\\n<|im_start|>assistant\\n'

The template comes with the model (tokenizer_config.json's "chat_template", chat_template.jinja, or a
GGUF's tokenizer.chat_template) and is code written by someone else, so it runs as transformers runs it:
in Jinja2's ImmutableSandboxedEnvironment (no attribute starting with "_", no method that mutates a
list or dict, nothing from Python but what we pass), with trim_blocks and lstrip_blocks, the loop
controls extension, and the same helpers: raise_exception, strftime_now, a tojson that keeps non-ASCII,
dict and namespace. Its variables: messages, add_generation_prompt, tools, documents, the special tokens
(bos_token, eos_token, ...) and any extra keyword argument. Needs jinja2 (pip install 'tinypeft[chat]').
"""
import json
from datetime import datetime

# roles a message may have; another role is almost always a typo that the template would render silently
KNOWN_ROLES = ("system", "developer", "user", "assistant", "tool", "ipython", "function")


class ChatTemplateError(ValueError):
    """The template refused the conversation (its raise_exception) or failed while rendering."""


def _environment():
    try:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ImportError("Chat templates need jinja2: pip install 'tinypeft[chat]'") from None

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # Jinja's own tojson escapes HTML characters (<, >, &), which would change the prompt
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    class TemplateDict:
        # dict(...) and dict.fromkeys(...) without exposing the dict type itself
        def __call__(self, *args, **kwargs):
            return dict(*args, **kwargs)

        def fromkeys(self, *args, **kwargs):
            return dict.fromkeys(*args, **kwargs)

    class TemplateNamespace(jinja2.utils.Namespace):
        # a namespace that refuses "_"-prefixed names, so no template can reach Python internals through it
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                TemplateNamespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            TemplateNamespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name):
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"a chat template may not set {name!r} on a namespace")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=strftime_now, dict=TemplateDict(),
                       namespace=TemplateNamespace)
    return env


_COMPILED = {}


def compile_template(template):
    if template not in _COMPILED:
        import jinja2

        try:
            _COMPILED[template] = _environment().from_string(template)
        except jinja2.exceptions.TemplateSyntaxError as e:
            raise ChatTemplateError(f"the chat template does not parse: {e} (line {e.lineno})") from None
    return _COMPILED[template]


def _plain(value):
    """A deep copy of the conversation: the template sees fresh dicts and lists, never the caller's."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def check_messages(messages):
    """Each message a dict with a known role and a content (None-valued keys dropped, as transformers does)."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("a conversation is a non-empty list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise TypeError(f"message {i} is a {type(m).__name__}, not a dict with 'role' and 'content'")
        m = {k: v for k, v in _plain(m).items() if v is not None}
        role = m.get("role")
        if role not in KNOWN_ROLES:
            raise ValueError(f"message {i} has role {role!r}; a role is one of {', '.join(KNOWN_ROLES)}")
        out.append(m)
    return out


def render_chat_template(template, messages, add_generation_prompt=False, continue_final_message=False,
                         tools=None, documents=None, **variables):
    """The conversation as the template writes it (one string)."""
    import jinja2

    if template is None:
        raise ValueError("this tokenizer has no chat template: pass chat_template=... or set tokenizer.chat_template")
    if continue_final_message and add_generation_prompt:
        raise ValueError("continue_final_message and add_generation_prompt cannot be used together")
    messages = check_messages(messages)
    tag = "CONTINUE_FINAL_MESSAGE_TAG "
    if continue_final_message:  # mark the end of the last message, render, and cut there
        if not isinstance(messages[-1].get("content"), str):
            raise ValueError("continue_final_message needs a final message with text content")
        final = messages[-1]["content"]
        messages[-1]["content"] = final + tag
    try:
        text = compile_template(template).render(messages=messages, tools=_plain(tools), documents=_plain(documents),
                                                 add_generation_prompt=add_generation_prompt, **_plain(variables))
    except jinja2.exceptions.SecurityError as e:
        raise ChatTemplateError(f"the chat template tried something the sandbox forbids: {e}") from None
    except jinja2.exceptions.TemplateError as e:
        raise ChatTemplateError(f"the chat template refused this conversation: {e}") from None
    except Exception as e:  # a template bug (a missing key, a bad filter argument, ...)
        raise ChatTemplateError(f"the chat template failed: {type(e).__name__}: {e}") from None
    if continue_final_message:
        if tag.strip() not in text:
            raise ValueError("continue_final_message: the template dropped the final message's end")
        at = text.rindex(tag.strip())
        text = text[:at] if text[at:at + len(tag)] == tag else text[:at].rstrip()
    return text


def apply_chat_template(tokenizer, conversation, tools=None, documents=None, chat_template=None,
                        add_generation_prompt=False, continue_final_message=False, tokenize=True, padding=False,
                        truncation=False, max_length=None, return_tensors=None, return_dict=True, **kwargs):
    """transformers' tokenizer.apply_chat_template: a string (tokenize=False), else the encoding (return_dict)
    or the ids; a list of conversations gives a list."""
    template = chat_template if chat_template is not None else tokenizer.chat_template
    batched = isinstance(conversation, (list, tuple)) and conversation and isinstance(conversation[0], (list, tuple))
    conversations = conversation if batched else [conversation]
    specials = {k: getattr(tokenizer, k) for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                                                   "cls_token", "mask_token") if getattr(tokenizer, k) is not None}
    variables = {**specials, **kwargs}  # keyword arguments win over the special tokens
    texts = [render_chat_template(template, c, add_generation_prompt, continue_final_message, tools, documents,
                                  **variables) for c in conversations]
    if not tokenize:
        return texts if batched else texts[0]
    out = tokenizer(texts if batched else texts[0], add_special_tokens=False, padding=padding,
                    truncation=truncation, max_length=max_length, return_tensors=return_tensors)
    return out if return_dict else out["input_ids"]
