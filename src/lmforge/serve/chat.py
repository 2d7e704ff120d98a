"""`POST /v1/chat/completions`: a chat request as the engine's prompt and options, and its answers as
OpenAI's completion or chunk stream.

Tools are rendered into the prompt by the template's tool format and answers are parsed back into
`tool_calls`. When streaming with tools, a candidate's text is sent as it comes until it may be the
start of a tool call; from there it is held until the candidate ends, then sent as `delta.tool_calls`
(or, if it was no call after all, as content). A streamed candidate's log-probabilities come with its
finishing chunk; with `stream_options.include_usage` a last chunk without choices carries the usage.
"""

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from lmforge.data.templates.jinja_render import THOUGHT_WORDS, with_thought_block
from lmforge.data.templates.template import Message as ChatTurn
from lmforge.data.templates.template import ToolCall
from lmforge.infer.candidates import Candidate
from lmforge.infer.engine import Engine, Prompt
from lmforge.infer.options import GenerationOptions
from lmforge.infer.stops import token_bytes
from lmforge.serve.content import RequestMedia, content_text
from lmforge.serve.protocol import (
    REFUSED,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    DeltaToolCall,
    FunctionCall,
    TokenLogprob,
    ToolCallItem,
    TopLogprob,
    refused_fields,
)
from lmforge.serve.reasoning import ReasoningStream, split_reasoning
from lmforge.serve.sampling import ApiSettings, RequestError, check_model, generation_options, refuse, usage


def chat_completion(request: ChatCompletionRequest, engine: Engine,
                    settings: ApiSettings) -> ChatCompletion | Iterator[str]:
    """The answer to a chat request: a whole completion, or (`stream`) the SSE data of its chunks."""
    refuse(refused_fields(request), REFUSED)
    check_model(request, settings)
    if request.top_logprobs and not request.logprobs:
        raise RequestError("top_logprobs needs logprobs: true")
    options = generation_options(request, engine, settings,
                                 max_tokens=request.max_completion_tokens or request.max_tokens,
                                 logprobs=(request.top_logprobs or 0) if request.logprobs else None,
                                 response_format=request.response_format)
    prompt = _prompt(request, engine, settings)
    single_call = request.parallel_tool_calls is False
    thoughts = _thought_split(engine, prompt) if settings.reasoning_content else None
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if request.stream:
        with_usage = bool(request.stream_options and request.stream_options.include_usage)
        return _stream_events(engine, prompt, options, completion_id, created, settings.model_id,
                              single_call=single_call, with_usage=with_usage, thoughts=thoughts)
    candidates = engine.complete(prompt, options)
    return ChatCompletion(
        id=completion_id, created=created, model=settings.model_id,
        choices=[Choice(index=i, message=_message(c, single_call, thoughts), finish_reason=c.finish_reason,
                        logprobs=chat_logprobs(engine, c) if request.logprobs else None)
                 for i, c in enumerate(candidates)],
        usage=usage(len(prompt.ids), sum(len(c.token_ids) for c in candidates)))


def _prompt(request: ChatCompletionRequest, engine: Engine, settings: ApiSettings) -> Prompt:
    """The request as the engine's prompt: messages (tool calls and results included) as template turns,
    images, videos and audios loaded under the media policy with a placeholder where each one was, and the
    tools unless `tool_choice` is `none`."""
    tools = _tools(request)
    media = RequestMedia(settings.media)
    system_parts: list[str] = []
    turns: list[ChatTurn] = []
    for number, message in enumerate(request.messages, start=1):
        if message.role in ("system", "developer"):
            system_parts.append(content_text(message, number - 1))
        elif message.role == "assistant":
            calls = tuple(_tool_call(call, number) for call in message.tool_calls or [])
            turns.append(ChatTurn("assistant", _with_thought(message, content_text(message, number - 1), number),
                                  calls))
        elif message.role == "tool":  # the id pairs a result with its call where the template writes ids
            turns.append(ChatTurn("tool", content_text(message, number - 1), tool_call_id=message.tool_call_id or ""))
        else:
            turns.append(ChatTurn("user", content_text(message, number - 1, media)))
    if not turns or turns[-1].role not in ("user", "tool"):
        raise RequestError("the last message must be the user's (or a tool result)")
    system = "\n\n".join(system_parts) if system_parts else None
    flags = request.mm_processor_kwargs
    return engine.prompt(turns, system, tools=tools, **media.loaded,
                         use_audio_in_video=flags.use_audio_in_video if flags is not None else None)


def _with_thought(message: ChatMessage, text: str, number: int) -> str:
    """An earlier answer with its `reasoning_content` as the think block in front, as lmforge's data holds it (the
    template then writes or drops earlier thoughts as the model's own template does)."""
    if not message.reasoning_content:
        return text
    if THOUGHT_WORDS[1] in text:
        raise RequestError(f"messages[{number - 1}] has both `reasoning_content` and a think block in its content; "
                           "send one")
    return with_thought_block(message.reasoning_content, text)


def _tools(request: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    """The tools the model is offered: `tool_choice` auto (the default) offers them, `none` does not."""
    choice = request.tool_choice
    if choice is None or choice == "auto":
        return request.tools
    if choice == "none":
        return None
    wanted = "`required`" if choice == "required" else f"`{json.dumps(choice)[:120]}`"
    raise RequestError(f"tool_choice {wanted} cannot be honoured: lmforge does not force the model to call a tool "
                       "(it renders the tools and parses the calls the model writes); send tool_choice `auto` "
                       "or `none`")


def _tool_call(call: ToolCallItem, number: int) -> ToolCall:
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except json.JSONDecodeError as err:
        raise RequestError(f"messages[{number - 1}]: tool call `{call.function.name}` arguments are not JSON "
                           f"({err.msg}): {call.function.arguments[:120]}") from None
    if not isinstance(arguments, dict):
        raise RequestError(f"messages[{number - 1}]: tool call `{call.function.name}` arguments must be a JSON "
                           "object")
    return ToolCall(call.function.name, arguments, call.id or "")


def _thought_split(engine: Engine, prompt: Prompt) -> tuple[tuple[str, str], bool]:
    """The template's thought words, and whether the prompt itself opened the thought (DeepSeek-R1's)."""
    words = engine.template.thought_words or THOUGHT_WORDS
    return words, engine.tokenizer.decode(prompt.ids[-16:]).rstrip().endswith(words[0])


def _message(candidate: Candidate, single_call: bool,
             thoughts: tuple[tuple[str, str], bool] | None = None) -> AssistantMessage:
    text = candidate.content if candidate.tool_calls else candidate.text
    thought = None
    if thoughts is not None:
        thought, text = split_reasoning(text or "", *thoughts)
    if not candidate.tool_calls:
        return AssistantMessage(content=text, reasoning_content=thought)
    return AssistantMessage(content=text or None, tool_calls=_call_items(candidate.tool_calls, single_call),
                            reasoning_content=thought)


def _call_items(calls: tuple[ToolCall, ...], single_call: bool) -> list[ToolCallItem]:
    """The calls with server-made ids; `parallel_tool_calls: false` keeps only the first."""
    return [ToolCallItem(id=f"call_{uuid.uuid4().hex[:24]}", function=FunctionCall(
        name=call.name, arguments=call.arguments_json())) for call in calls[:1 if single_call else None]]


def _entry(engine: Engine, token_id: int, logprob: float) -> TopLogprob:
    return TopLogprob(token=engine.tokenizer.decode([token_id]), logprob=logprob,
                      bytes=list(token_bytes(engine.tokenizer, token_id)))


def chat_logprobs(engine: Engine, candidate: Candidate) -> ChoiceLogprobs | None:
    """Each answer token with its log-probability and, when asked for, the likeliest tokens at its place."""
    if candidate.token_logprobs is None:
        return None
    alternatives = candidate.top_logprobs or ((),) * len(candidate.token_ids)
    entries = []
    for token_id, logprob, top in zip(candidate.token_ids, candidate.token_logprobs, alternatives, strict=True):
        chosen = _entry(engine, token_id, logprob)
        entries.append(TokenLogprob(**chosen.model_dump(),
                                    top_logprobs=[_entry(engine, other, value) for other, value in top]))
    return ChoiceLogprobs(content=entries)


def _stream_events(engine: Engine, prompt: Prompt, options: GenerationOptions, completion_id: str, created: int,
                   model: str, *, single_call: bool, with_usage: bool,
                   thoughts: tuple[tuple[str, str], bool] | None = None) -> Iterator[str]:
    def chunk(index: int, delta: Delta, finish_reason: Any = None, logprobs: ChoiceLogprobs | None = None) -> str:
        choice = ChunkChoice(index=index, delta=delta, finish_reason=finish_reason, logprobs=logprobs)
        return ChatCompletionChunk(id=completion_id, created=created, model=model,
                                   choices=[choice]).model_dump_json(exclude_none=True)

    def pieces(index: int, text: str, finished: bool) -> Iterator[str]:
        """A candidate's text as answer deltas, or thought and answer ones (`--reasoning-content`)."""
        if splitters is None:
            if text:
                yield chunk(index, Delta(content=text))
            return
        thought, answer = splitters[index].feed(text)
        if finished:
            rest_thought, rest_answer = splitters[index].finish()
            thought, answer = thought + rest_thought, answer + rest_answer
        if thought:
            yield chunk(index, Delta(reasoning_content=thought))
        if answer:
            yield chunk(index, Delta(content=answer))

    splitters = [ReasoningStream(*thoughts) for _ in range(options.n)] if thoughts is not None else None
    completion_tokens = 0
    for index in range(options.n):
        yield chunk(index, Delta(role="assistant", content=""))
    for delta in engine.stream(prompt, options):
        finished = delta.candidate
        if finished is not None:
            completion_tokens += len(finished.token_ids)
        logprobs = chat_logprobs(engine, finished) if finished is not None and options.logprobs is not None else None
        if delta.tool_calls:  # the calls, then the finish (as OpenAI sends them)
            yield from pieces(delta.index, delta.text or "", True)
            calls = [DeltaToolCall(index=i, **item.model_dump())
                     for i, item in enumerate(_call_items(delta.tool_calls, single_call))]
            yield chunk(delta.index, Delta(tool_calls=calls))
            yield chunk(delta.index, Delta(), delta.finish_reason, logprobs)
            continue
        if splitters is None:
            yield chunk(delta.index, Delta(content=delta.text) if delta.text else Delta(), delta.finish_reason,
                        logprobs)
            continue
        yield from pieces(delta.index, delta.text or "", delta.finish_reason is not None)
        if delta.finish_reason is not None:
            yield chunk(delta.index, Delta(), delta.finish_reason, logprobs)
    if with_usage:
        yield ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[],
                                  usage=usage(len(prompt.ids), completion_tokens)).model_dump_json(exclude_none=True)
    yield "[DONE]"
