"""Streamers: generate() hands them tokens as it makes them, they turn those into text (transformers' streamers).

generate() calls `streamer.put(ids)` once with the prompt ([1, T] decoder-only, or the decoder start token
for an encoder-decoder model), then once per step with the new token ([1]), then `streamer.end()`.

Text cannot be printed token by token: a token may end half-way through a word or a multi-byte character,
and decoding it alone gives a different string than decoding it with its neighbours. So TextStreamer keeps
the ids of the current line, decodes them all each time, and prints only the part that can no longer change:
up to the last space, or everything at a newline, after a CJK character, or when the tail is letters and
digits only (transformers' rule, so the same chunks come out).
"""
import unicodedata
from queue import Queue

from ..tensor import as_array


class BaseStreamer:
    """What generate() calls: put(ids) for the prompt and each new token, end() when it is done."""

    def put(self, value):
        raise NotImplementedError

    def end(self):
        raise NotImplementedError


class TextStreamer(BaseStreamer):
    """Prints text to stdout as tokens come; `skip_prompt=True` leaves the prompt out (chat).

    decode_kwargs (e.g. skip_special_tokens=True) go to tokenizer.decode.
    """

    def __init__(self, tokenizer, skip_prompt=False, **decode_kwargs):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache = []  # ids of the text not yet printed to the end of its line
        self.print_len = 0  # characters of decode(token_cache) already printed
        self.next_tokens_are_prompt = True

    def put(self, value):
        value = as_array(value)
        if value.ndim > 1 and value.shape[0] > 1:
            raise ValueError("TextStreamer only supports batch size 1: generate one prompt at a time to stream it.")
        if value.ndim > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(int(i) for i in value.reshape(-1))
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):
            # a finished line: print it all and start the next line from the newline token alone
            printable = text[self.print_len:]
            self.token_cache = self.token_cache[-1:]
            self.print_len = len(self.tokenizer.decode(self.token_cache[-1], **self.decode_kwargs))
        elif text and self._is_chinese_char(ord(text[-1])):
            printable = text[self.print_len:]  # CJK characters are words of their own
            self.print_len += len(printable)
        elif all(c.isspace() or unicodedata.category(c)[0] in "LMN" for c in text[self.print_len:]):
            printable = text[self.print_len:]
            self.print_len += len(printable)
        else:
            printable = text[self.print_len: text.rfind(" ") + 1]  # hold back the word being built
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self):
        """Print whatever is held back, then a newline; the next put() starts a new prompt."""
        printable = ""
        if self.token_cache:
            printable = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)[self.print_len:]
        self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text, stream_end=False):
        print(text, flush=True, end=None if stream_end else "")

    @staticmethod
    def _is_chinese_char(cp):
        """True for the CJK Unified Ideographs blocks (as BERT's tokenizer defines them)."""
        return any(lo <= cp <= hi for lo, hi in (
            (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


class TextIteratorStreamer(TextStreamer):
    """Puts text chunks in a queue; iterate over it while generate() runs in another thread.

        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
        Thread(target=model.generate, kwargs=dict(**inputs, streamer=streamer)).start()
        for chunk in streamer: print(chunk, end="")

    timeout (seconds) bounds each wait, so a generate() that raised does not leave the reader blocked forever.
    """

    def __init__(self, tokenizer, skip_prompt=False, timeout=None, **decode_kwargs):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text, stream_end=False):
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self):
        value = self.text_queue.get(timeout=self.timeout)
        if value is self.stop_signal:
            raise StopIteration
        return value


__all__ = ["BaseStreamer", "TextStreamer", "TextIteratorStreamer"]
