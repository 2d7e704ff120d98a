"""Template errors named by the row that caused them.

Rows are rendered in batches, so a template error (a system prompt for a template without a system
slot, a role it cannot place) surfaces without its row. On such an error the rows are rendered again
one by one, which is cheap and happens only on the way to failing, to name the first one that fails.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from lmforge.data.templates.encoding import Chat
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError


@contextmanager
def template_errors_name_their_row(template: Template, chats: Sequence[Chat], sources: Sequence[str],
                                   enable_thinking: str | None = None) -> Iterator[None]:
    """Re-raise a TemplateError from the block as `"<source>: <error>"` of the first row that fails alone."""
    try:
        yield
    except TemplateError as err:
        for chat, source in zip(chats, sources, strict=True):
            try:
                template.render(chat.messages, system=chat.system, tools=chat.tools, enable_thinking=enable_thinking,
                                train=True)
            except TemplateError:
                raise TemplateError(f"{source}: {err}") from None
        raise
