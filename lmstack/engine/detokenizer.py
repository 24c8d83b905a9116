"""Incremental detokenization and stop strings: turn one token at a time into safe text deltas.

Follows the prefix/read-offset scheme of vLLM's detokenizer and transformers' TextStreamer: a
byte-level token may end mid-character, so text is released only once it decodes cleanly.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"  # what a decoder emits for an incomplete UTF-8 sequence
CONTEXT_TOKENS = 4  # prompt tokens decoded ahead of the output so a leading space survives


class IncrementalDetokenizer:
    """Feeds on token ids, returns text deltas that never split a UTF-8 character.

    Decoding a token on its own can lose information (SentencePiece drops the leading space of
    the first token; a byte-level token may be half of an emoji), so each step decodes a short
    window that starts a few tokens back and releases only the part beyond what the window's
    prefix already produced, and only when it does not end in an incomplete character.
    """

    def __init__(self, tokenizer, prompt_ids: list[int], skip_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids = list(prompt_ids[-CONTEXT_TOKENS:])
        self.prefix_offset = 0
        self.read_offset = len(self.ids)

    def _decode(self, ids: list[int]) -> str:
        if self.tokenizer is None:  # an engine driven by token ids alone reports no text
            return ""
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        return self._release(final=False)

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character at the very end, if any)."""
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        prefix = self._decode(self.ids[self.prefix_offset:self.read_offset])
        full = self._decode(self.ids[self.prefix_offset:])
        if len(full) <= len(prefix) or (full.endswith(REPLACEMENT) and not final):
            return ""
        # Windows stay short: the next one starts where this one's new text began.
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return full[len(prefix):]


class StopChecker:
    """Accumulates the output text and decides how much of it is safe to show.

    A stop string ends the output before it (OpenAI's behaviour: the stop string itself is not
    returned). Text that could be the start of a stop string is held back until the next
    token settles it, so a client never sees half a stop sequence.
    """

    def __init__(self, stop: list[str]):
        self.stop = stop
        self.text = ""
        self.emitted = 0
        self.stopped = False

    def add(self, delta: str) -> str:
        """Append newly decoded text; returns the part that may be shown now."""
        if not delta or self.stopped:
            return ""
        before = len(self.text)
        self.text += delta
        if not self.stop:
            return self._emit(len(self.text))
        cut = self._find_stop(before)
        if cut is not None:
            self.text, self.stopped = self.text[:cut], True
            return self._emit(cut)
        return self._emit(len(self.text) - self._held_back())

    def flush(self) -> str:
        return self._emit(len(self.text))

    def _find_stop(self, before: int) -> int | None:
        hits = []
        for s in self.stop:
            # Only a match that overlaps the new text can be new.
            i = self.text.find(s, max(0, before - len(s) + 1))
            if i >= 0:
                hits.append(i)
        return min(hits) if hits else None

    def _held_back(self) -> int:
        """Length of the longest tail of the text that is a proper prefix of a stop string."""
        longest = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.text)), longest, -1):
                if self.text.endswith(s[:n]):
                    longest = n
                    break
        return longest

    def _emit(self, end: int) -> str:
        end = max(end, self.emitted)
        out, self.emitted = self.text[self.emitted:end], end
        return out
