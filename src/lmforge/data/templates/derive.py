"""Derive a registration from a jinja chat template (`lmforge template derive`).

It renders marker conversations with the jinja and reads the slots off the differences: the
generation header is what a generation prompt adds, the assistant slot what an answer adds, the user
slot what a second question adds, the system slot what a system message adds (in its own turn or in
front of the first question). The result is then rendered against the jinja on the plain battery,
so the printed registration says whether it reproduces the template exactly.
"""

from dataclasses import dataclass, fields

from lmforge.data.templates.auto import render_jinja
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


@dataclass
class Derived:
    template: Template
    mismatches: list[str]  # names of CHECKS the derived template does not reproduce

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
        raise TemplateError(f"cannot derive {what}: the template is not prefix-preserving there")
    return longer[len(shorter):]


def _tokens(slot: str, bos: str, eos: str) -> str:
    for text, placeholder in ((bos, "{{bos_token}}"), (eos, "{{eos_token}}")):
        if text:
            slot = slot.replace(text, placeholder)
    return slot


def derive_template(chat_template: str, name: str, bos_token: str = "", eos_token: str = "") -> Derived:
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
    template = Template(
        name=name, format_prefix=_tokens(prefix, bos_token, eos_token), format_user=_tokens(user, bos_token, eos_token),
        format_generation=_tokens(generation, bos_token, eos_token),
        format_assistant=_tokens(assistant, bos_token, eos_token), assistant_suffix=suffix,
        format_system=_tokens(system, bos_token, eos_token), system_in_user=system_in_user,
        system_always=system_always, default_system=default_system, stop_words=(stop,) if stop else (),
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
