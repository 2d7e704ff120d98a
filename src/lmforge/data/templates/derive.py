"""Derive a registration from a jinja chat template (`lmforge template derive`).

It renders marker conversations with the jinja and reads the slots off the differences: the
generation header is what a generation prompt adds, the assistant slot what an answer adds, the user
slot what a second question adds, the system slot what a system message adds (in its own turn or in
front of the first question). The verdict covers what training needs, not only the text: on the
battery, the registration must render the jinja's text, train the answers `template: auto` trains
(where each starts and ends, its end-of-turn supervised) and stop at its end-of-turn (stop words).
A jinja whose constructs slots cannot hold is named as such, with `template: auto` as the way to train it.
"""

import re
from dataclasses import dataclass, fields

from lmforge.data.templates.auto import auto_template, render_jinja
from lmforge.data.templates.messages import Message
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError

U1, U2, A1, SYSTEM = "USERQUESTIONONE", "USERQUESTIONTWO", "ASSISTANTANSWERONE", "SYSTEMPROMPTTEXT"
CHECKS = {
    "single turn": [Message("user", "Hello there!"), Message("assistant", "Hi!")],
    "multi turn": [Message("user", "Name a colour."), Message("assistant", "Blue."),
                   Message("user", "Another?"), Message("assistant", "Green.")],
    "with system": [Message("system", "Be brief."), Message("user", "2+2?"), Message("assistant", "4.")],
}


THOUGHTS = [Message("user", "Name a colour."), Message("assistant", "<think>\nAny.\n</think>\n\nBlue."),
            Message("user", "Another?"), Message("assistant", "<think>\nNot blue.\n</think>\n\nGreen.")]
USE_AUTO = "use `template: auto` (the model's own template, each answer trained in its generation-time context)"


@dataclass
class Derived:
    template: Template
    mismatches: list[str]  # what the derived template does not reproduce: text, trained answers, stop words
    not_expressible: str | None = None  # the jinja construct slots cannot hold, when that is why

    @property
    def reproduces(self) -> bool:
        return not self.mismatches and self.not_expressible is None

    def registration(self) -> str:
        """Python source that registers the derived template (only fields that differ from the defaults)."""
        defaults = Template(name="_", format_user="", format_assistant="")
        lines = [f'register_template(\n    "{self.template.name}",']
        for item in fields(Template):
            value = getattr(self.template, item.name)
            if item.name == "name" or value == getattr(defaults, item.name):
                continue
            lines.append(f"    {item.name}={value!r},")
        lines.append(")")
        return "\n".join(lines)


def _after(longer: str, shorter: str, what: str) -> str:
    if not longer.startswith(shorter):
        at = next(i for i, (a, b) in enumerate(zip(shorter + "\0", longer + "\0", strict=False)) if a != b)
        raise TemplateError(f"cannot derive {what}: the template rewrites earlier text when the conversation goes "
                            f"on (not prefix-preserving): {shorter[at:at + 40]!r} becomes {longer[at:at + 40]!r}")
    return longer[len(shorter):]


def _tokens(slot: str, bos: str, eos: str) -> str:
    for text, placeholder in ((bos, "{{bos_token}}"), (eos, "{{eos_token}}")):
        if text:
            slot = slot.replace(text, placeholder)
    return slot


def derive_template(chat_template: str, name: str, bos_token: str = "", eos_token: str = "") -> Derived:
    """The registration read off the jinja, and how far it reproduces it; a construct slots cannot hold is
    `not_expressible` (then the registration is only an attempt)."""
    try:
        derived = _derive_slots(chat_template, name, bos_token, eos_token)
    except TemplateError as err:
        return Derived(Template(name=name, format_user="", format_assistant=""), [],
                       f"{str(err).removeprefix('cannot derive ')}; {USE_AUTO}")
    derived.mismatches += training_mismatches(derived.template, chat_template, bos_token, eos_token)
    derived.not_expressible = _construct(derived, chat_template, bos_token, eos_token)
    return derived


def training_mismatches(template: Template, chat_template: str, bos: str, eos: str) -> list[str]:
    """Where `template` trains differently from the jinja: the answers `template: auto` supervises (their start,
    their end-of-turn), and the end-of-turn among its stop words."""
    auto = auto_template(chat_template, bos, eos)
    problems = []
    for check, messages in CHECKS.items():
        try:
            theirs = [s.text for example in auto.examples(messages, bos_token=bos, eos_token=eos, train=True)
                      for s in example if s.supervised]
        except TemplateError:
            continue
        try:
            ours = [s.text for s in template.render(messages, bos_token=bos, eos_token=eos, train=True) if s.supervised]
        except TemplateError:
            ours = []
        if ours != theirs:
            problems.append(f"{check} (trained answers: {ours!r}, the template's {theirs!r})")
    missing = [word for word in auto.stop_words if word not in template.stop_words and word != eos]
    if missing:
        problems.append(f"stop words (the end-of-turn {', '.join(missing)} is not one)")
    return problems


def _construct(derived: Derived, chat_template: str, bos: str, eos: str) -> str | None:
    """The construct of the jinja that slots cannot hold, when the registration does not reproduce it."""
    auto = auto_template(chat_template, bos, eos)
    try:
        split = len(auto.examples(THOUGHTS, bos_token=bos, eos_token=eos)) > 1 or len(
            auto.examples(CHECKS["multi turn"], bos_token=bos, eos_token=eos)) > 1
    except TemplateError:
        split = False
    if split:
        return ("earlier turns are written differently from the turn being generated (thoughts dropped from "
                f"history, a marker only on the last turn); {USE_AUTO}")
    if not derived.mismatches:
        return None
    if re.search(r"reasoning_content|</think>|\.thinking", chat_template):
        return f"the template writes thoughts (a think block from the data) that fixed slots cannot; {USE_AUTO}"
    if "strftime_now" in chat_template or "date_string" in chat_template:
        return f"the template writes today's date; {USE_AUTO} (or set `default_system` with `{{{{date}}}}`)"
    if auto.style.content_parts:
        return f"the template reads content as a list of typed parts (a vision-language template); {USE_AUTO}"
    if all(problem.startswith("with system") for problem in derived.mismatches):
        return ("the template drops the system prompt or moves it (into the last question), which the system "
                f"slot cannot; {USE_AUTO}")
    return f"slots do not reproduce it ({'; '.join(derived.mismatches)}); {USE_AUTO}"


def compare_renderings(template: Template, chat_template: str, bos: str, eos: str,
                       cases: list[tuple[str, list[Message], list | None, bool]]) -> list[tuple[str, str | None]]:
    """(label, None when equal, else a unified diff or why it is not comparable) per case (`lmforge template check`)."""
    import difflib

    out: list[tuple[str, str | None]] = []
    for label, messages, tools, generation in cases:
        try:
            theirs = render_jinja(chat_template, messages, tools=tools, add_generation_prompt=generation,
                                  bos_token=bos, eos_token=eos)
            ours = template.render_text(messages, tools=tools, add_generation_prompt=generation, bos_token=bos,
                                        eos_token=eos)
        except TemplateError as err:
            out.append((label, f"not comparable ({err})"))
            continue
        diff = difflib.unified_diff(theirs.splitlines(keepends=True), ours.splitlines(keepends=True),
                                    "tokenizer chat_template", f"template {template.name}")
        out.append((label, None if ours == theirs else
                    "".join(line if line.endswith("\n") else line + "\n" for line in diff)))
    return out


def _derive_slots(chat_template: str, name: str, bos_token: str, eos_token: str) -> Derived:
    def render(messages: list[Message], generation: bool = False) -> str:
        return render_jinja(chat_template, messages, add_generation_prompt=generation,
                            bos_token=bos_token, eos_token=eos_token)

    user1, answer1, user2 = Message("user", U1), Message("assistant", A1), Message("user", U2)
    one, prompt = render([user1]), render([user1], True)
    generation = _after(prompt, one, "the generation prompt")
    answered = render([user1, answer1])
    assistant_full = _after(answered, prompt, "the assistant slot")
    suffix = assistant_full[len(assistant_full.rstrip()):]
    assistant = assistant_full[: len(assistant_full) - len(suffix)].replace(A1, "{{content}}")
    user = _after(render([user1, answer1, user2]), answered, "the user slot").replace(U2, "{{content}}")
    user_one = user.replace("{{content}}", U1)
    if not one.endswith(user_one):
        raise TemplateError("cannot derive the user slot: the first question renders differently from later ones")
    head = one[: len(one) - len(user_one)]
    prefix, system, system_in_user, system_always, default_system = head, "", False, False, ""
    try:
        with_system = render([Message("system", SYSTEM), user1])
    except TemplateError:
        with_system = ""
    if SYSTEM in with_system:
        if with_system.endswith(user_one):
            block = with_system[: len(with_system) - len(user_one)]
            start = 0
            while start < min(len(head), len(block)) and head[start] == block[start] and start < block.index(SYSTEM):
                start += 1
            prefix, system = block[:start], block[start:].replace(SYSTEM, "{{content}}")
            before, _, after = system.partition("{{content}}")
            rest = head[len(prefix):]
            if rest.startswith(before) and rest.endswith(after) and len(rest) >= len(before) + len(after):
                default_system = rest[len(before): len(rest) - len(after)]
                system_always = bool(rest) and not default_system  # an empty system turn is always written
        else:
            before, _, after = user.partition("{{content}}")
            start = with_system.index(before, len(head)) + len(before) if before else len(head)
            system = with_system[start: with_system.rindex(U1)].replace(SYSTEM, "{{content}}")
            system_in_user = True
    stop = assistant.split("{{content}}")[-1].strip()
    # no end-of-turn after an answer (GLM-4.5, ChatGLM3): training appends eos so the model learns to stop
    no_end = not stop and bool(eos_token)
    template = Template(
        name=name, format_prefix=_tokens(prefix, bos_token, eos_token), format_user=_tokens(user, bos_token, eos_token),
        format_generation=_tokens(generation, bos_token, eos_token),
        format_assistant=_tokens(assistant, bos_token, eos_token), assistant_suffix=suffix,
        format_system=_tokens(system, bos_token, eos_token), system_in_user=system_in_user,
        system_always=system_always, default_system=default_system,
        stop_words=(stop,) if stop else (eos_token,) if eos_token else (), efficient_eos=no_end,
        description="derived from a jinja chat template by `lmforge template derive`")
    mismatches = []
    for check, messages in CHECKS.items():
        for generation_prompt in (False, True):
            shown = messages[:-1] if generation_prompt else messages
            try:
                theirs = render(shown, generation_prompt)
            except TemplateError:
                continue
            try:
                ours = template.render_text(shown, add_generation_prompt=generation_prompt,
                                            bos_token=bos_token, eos_token=eos_token)
            except TemplateError:
                ours = None
            if ours != theirs:
                mismatches.append(f"{check} ({'prompt' if generation_prompt else 'full'})")
    return Derived(template, mismatches)
