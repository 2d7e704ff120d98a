"""OpenAI chat and text completions: request and response shapes, plus our extensions.

Every field the official `openai` client sends is declared: served, accepted without effect (ids and
OpenAI's own caching or billing hints), or refused with the reason in `REFUSED`. Extensions (send
them with the `openai` client's `extra_body`): `top_k`, `repetition_penalty`, `candidate_method`,
`num_beams`, `num_beam_groups`, `diversity_penalty`; on chat, `mm_processor_kwargs.use_audio_in_video` (as
vLLM's server takes it).
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageUrl(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class VideoUrl(_Strict):
    url: str  # as for images: a data URL (`data:video/mp4;base64,...`), an http(s) URL or an allowed path


class InputAudio(_Strict):
    data: str  # base64 of the file's bytes
    format: str  # the file's format (the openai client says `wav` or `mp3`); FFmpeg reads it from the bytes


class ContentPart(_Strict):
    type: Literal["text", "image_url", "video_url", "input_audio"]
    text: str | None = None
    image_url: ImageUrl | None = None
    video_url: VideoUrl | None = None
    input_audio: InputAudio | None = None


class FunctionCall(_Strict):
    name: str
    arguments: str  # a JSON object, as a string (OpenAI's shape)


class ToolCallItem(_Strict):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallItem] | None = None
    tool_call_id: str | None = None
    # an earlier answer's thought, as DeepSeek's API and vLLM's reasoning parsers return it (clients send it back)
    reasoning_content: str | None = None


class StreamOptions(_Strict):
    include_usage: bool | None = None  # a last chunk with the usage and no choices
    include_obfuscation: bool | None = None  # OpenAI pads chunks against size side channels; see `REFUSED`


class JsonSchema(_Strict):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None


class MMProcessorKwargs(_Strict):
    """vLLM's `mm_processor_kwargs` (how its server takes Qwen-Omni's flag): the one lmforge takes per request."""

    use_audio_in_video: bool | None = None  # Qwen-Omni: each video's sound with its frames; None: the served config's


class SamplingRequest(_Strict):
    """The fields chat and text completions share: what to generate and how."""

    model: str
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None  # token id (as a string) -> bias, -100..100
    user: str | None = None  # an end-user id: accepted, it changes nothing
    # lmforge extensions
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0)
    candidate_method: Literal["sample", "beam", "diverse_beam", "diverse_sample"] | None = None
    num_beams: int | None = Field(None, ge=1)
    num_beam_groups: int | None = Field(None, ge=1)
    diversity_penalty: float | None = Field(None, ge=0)


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    mm_processor_kwargs: MMProcessorKwargs | None = None  # lmforge (and vLLM) extension
    # accepted, they change no answer: request bookkeeping and OpenAI's own caching and billing hints
    metadata: dict[str, str] | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    store: bool | None = None  # see `REFUSED`
    service_tier: str | None = None  # see `REFUSED`
    modalities: list[str] | None = None  # see `REFUSED`
    # refused when sent (see `REFUSED`): declared so the refusal can say why
    audio: Any = None
    functions: Any = None
    function_call: Any = None
    prediction: Any = None
    reasoning_effort: Any = None
    verbosity: Any = None
    web_search_options: Any = None
    moderation: Any = None


REFUSED = {
    "audio": "lmforge answers in text only",
    "modalities": "lmforge answers in text only: send [\"text\"] or leave it out",
    "functions": "the deprecated functions API: send the same specs as `tools`",
    "function_call": "the deprecated functions API: send `tool_choice`",
    "prediction": "predicted outputs (a draft the answer is expected to repeat) are not supported",
    "reasoning_effort": "a model's thinking is set by the template's `enable_thinking` in the served config",
    "verbosity": "no served model is trained to follow a verbosity setting",
    "web_search_options": "lmforge has no web search",
    "moderation": "lmforge runs no moderation",
    "store": "lmforge stores no completions: send false or leave it out",
    "service_tier": "OpenAI's processing tiers do not exist here: send auto or default, or leave it out",
    "include_obfuscation": "chunks are not padded: send stream_options.include_obfuscation false or leave it out",
}


def refused_fields(request: SamplingRequest) -> list[str]:
    """The request's fields that lmforge cannot honour (keys of `REFUSED`), in the order `REFUSED` lists them."""
    sent = request.model_dump(exclude_none=True)
    allowed = {"modalities": [["text"]], "store": [False], "service_tier": ["auto", "default"]}
    refused = [name for name in REFUSED if name in sent and sent[name] not in allowed.get(name, [])]
    if request.stream_options is not None and request.stream_options.include_obfuscation:
        refused.append("include_obfuscation")
    return refused


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallItem] | None = None
    reasoning_content: str | None = None  # the thought, with `lmforge api --reasoning-content`


FinishReason = Literal["stop", "length", "tool_calls"]


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class DeltaToolCall(ToolCallItem):
    index: int  # which of the candidate's calls this is


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None
    reasoning_content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionRequest(SamplingRequest):
    """`/v1/completions`: plain-text prompts, continued as they are (no chat template)."""

    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = Field(None, ge=0, le=5)  # this many alternatives per token (0: the chosen one only)
    echo: bool | None = None  # the prompt comes back in front of the answer
    suffix: str | None = None  # refused: see `COMPLETION_REFUSED`
    best_of: int | None = Field(None, ge=1)  # refused above n: see `COMPLETION_REFUSED`


COMPLETION_REFUSED = {
    "suffix": "insertion (fill in the middle) is not supported: send the text before the gap as the prompt",
    "best_of": "send `n` with extra_body candidate_method `diverse_sample` (it draws several, keeps the best)",
}


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: FinishReason | None
    logprobs: CompletionLogprobs | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
