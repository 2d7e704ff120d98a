"""A reasoning model's thought returned apart from its answer (`lmforge api --reasoning-content`).

DeepSeek's API and vLLM's reasoning parsers return the text a model writes inside its thought words (`<think>`
... `</think>`, or the template's own) as `reasoning_content`, and only what follows as `content`; clients such as
Open WebUI and LangChain show the two apart. The thought is the text before the first closing word, its opening
word dropped; it counts as opened when the answer starts with the opening word or the prompt ended in it (the
templates that open the thought for the model, DeepSeek-R1's). An answer without a closing word is all thought
when it was opened (cut off by `max_tokens`), else all answer. `ReasoningStream` does the same on streamed text,
holding back only what could be the start of a thought word.
"""


def _held(text: str, word: str) -> int:
    """How many characters at the end of `text` could begin `word` (to hold back until the next piece)."""
    for size in range(min(len(word) - 1, len(text)), 0, -1):
        if word.startswith(text[-size:]):
            return size
    return 0


def split_reasoning(text: str, words: tuple[str, str], opened: bool) -> tuple[str | None, str]:
    """(the thought, or None when there is none; the answer) of a whole generated text."""
    stream = ReasoningStream(words, opened)
    thought, answer = stream.feed(text)
    rest_thought, rest_answer = stream.finish()
    thought, answer = thought + rest_thought, answer + rest_answer
    return (thought.strip() if stream.thought_seen else None), answer


class ReasoningStream:
    """Streamed text split into thought and answer pieces, in order."""

    def __init__(self, words: tuple[str, str], opened: bool) -> None:
        self.open_word, self.close_word = words
        self.state = "thought" if opened else "start"
        self.thought_seen = opened
        self.pending = ""
        self.trim = False  # the blank lines between the closing word and the answer

    def feed(self, text: str) -> tuple[str, str]:
        """(thought, answer) pieces ready to send after `text`."""
        self.pending += text
        thought = answer = ""
        if self.state == "start":
            stripped = self.pending.lstrip()
            if stripped.startswith(self.open_word):
                self.state, self.thought_seen = "thought", True
                self.pending = stripped[len(self.open_word):]
            elif self.open_word.startswith(stripped):
                return "", ""  # it may still become the opening word
            else:
                self.state = "answer"
        if self.state == "thought":
            if self.close_word in self.pending:
                thought, self.pending = self.pending.split(self.close_word, 1)
                self.state, self.trim = "answer", True
            else:
                keep = _held(self.pending, self.close_word)
                thought, self.pending = self.pending[:len(self.pending) - keep], self.pending[len(self.pending) - keep:]
                return thought, ""
        if self.state == "answer":
            if self.trim:
                self.pending = self.pending.lstrip("\n")
                self.trim = not self.pending
            answer, self.pending = self.pending, ""
        return thought, answer

    def finish(self) -> tuple[str, str]:
        """What was held back, once the text has ended."""
        pending, self.pending = self.pending, ""
        return (pending, "") if self.state == "thought" else ("", pending)
