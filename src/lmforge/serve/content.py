"""A chat message's OpenAI content parts as template text and the media they carry.

Each media part becomes its placeholder (`<image>`, `<video>`, `<audio>`) where it stands among the text
parts, and its bytes are loaded under the media policy (the engine then refuses a medium the model does
not take, naming the model and the medium):

- `image_url` / `video_url` (`{"url": ...}`, the shape vLLM and Qwen's servers accept for videos): a data
  URL, an http(s) URL (with remote fetching on) or a local path inside an allowed folder;
- `input_audio` (`{"data": <base64>, "format": "wav"|"mp3"|...}`, as the official `openai` client sends it).
"""

from dataclasses import dataclass, field

from lmforge.data.multimodal.plugin import PLACEHOLDERS
from lmforge.serve.media import MediaPolicy
from lmforge.serve.protocol import ChatMessage, ContentPart
from lmforge.serve.sampling import RequestError

PART_KIND = {"image_url": "images", "video_url": "videos", "input_audio": "audios"}  # part type -> medium


@dataclass
class RequestMedia:
    """The request's media, per medium in the order sent (the engine's `images`, `videos`, `audios`)."""

    policy: MediaPolicy
    loaded: dict[str, list[bytes]] = field(default_factory=dict)

    def add(self, part: ContentPart, where: str) -> str:
        """Load the part's bytes under the policy; its placeholder goes in the text."""
        kind = PART_KIND[part.type]
        if part.type == "input_audio":
            audio = part.input_audio
            if audio is None:
                raise RequestError(f"{where}.input_audio is missing: an `input_audio` part carries "
                                   '`{"data": <base64>, "format": "wav"}`')
            data = self.policy.load_base64(audio.data, kind, f"{where}.input_audio.data")
        else:
            url = getattr(part, part.type)
            if url is None:
                raise RequestError(f"{where}.{part.type} is missing: {_a(part.type)} part carries "
                                   f'`{{"url": ...}}`')
            data = self.policy.load(url.url, kind)
        self.loaded.setdefault(kind, []).append(data)
        return PLACEHOLDERS[kind]


def content_text(message: ChatMessage, number: int, media: RequestMedia | None = None) -> str:
    """The message's text; with `media` (a user message), each media part becomes its placeholder."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    pieces = []
    for index, part in enumerate(message.content):
        where = f"messages[{number}].content[{index}]"
        if part.type == "text":
            if part.text is None:
                raise RequestError(f"{where}.text is missing: a `text` part carries its `text`")
            pieces.append(part.text)
        elif media is None:
            raise RequestError(f"{where}: {PART_KIND[part.type]} go in user messages, not in a `{message.role}` "
                               "message")
        else:
            pieces.append(media.add(part, where))
    return "".join(pieces)


def _a(part_type: str) -> str:
    return f"an `{part_type}`" if part_type[0] in "aeiou" else f"a `{part_type}`"
