"""The Chat tab: the top bar's model with its adapters, a system prompt, tools, an image, a video or an
audio clip for the multimodal models that take them, sampling controls, and several candidates side by side
with their log-probabilities. Answers stream; a reasoning model's thought and a tool call are shown folded,
as such."""

import html
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError
from lmforge.serve.webui.i18n import Texts, text
from lmforge.serve.webui.schema import form_config
from lmforge.serve.webui.state import UiState

CANDIDATE_METHODS = ("sample", "beam", "diverse_beam", "diverse_sample")
Turn = dict[str, Any]


def read_tools(spec: str) -> list[dict[str, Any]] | None:
    """The tools text box: a JSON list of function specs (empty: no tools)."""
    from lmforge.errors import ConfigError

    if not spec.strip():
        return None
    try:
        tools = json.loads(spec)
    except json.JSONDecodeError as err:
        raise ConfigError(f"tools: not JSON ({err.msg} at line {err.lineno}); give a list of function specs") from None
    return tools if isinstance(tools, list) else [tools]


def search_sizes(method: str, n: int) -> dict[str, int]:
    """Beam settings for n candidates: n beams, or for diverse beams n groups of two."""
    if method == "beam":
        return {"num_beams": max(n, 2)}
    if method == "diverse_beam":
        groups = max(n, 2)
        return {"num_beams": 2 * groups, "num_beam_groups": groups}
    return {"num_beams": 1, "num_beam_groups": 1}


def content_text(content: Any) -> str:
    """Gradio may hand message content back as a list of parts; keep the text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


MEDIA_KINDS = ("images", "videos", "audios")
Media = dict[str, list[Any]]  # kind -> items


def with_placeholders(turns: list[Any], media: dict[int, Media]) -> tuple[list[Any], Media]:
    """The turns with placeholders (`<image>`, `<video>`, `<audio>`) in front of the user turns that had media,
    and those media by kind, in order."""
    from lmforge.data.multimodal.plugin import PLACEHOLDERS
    from lmforge.data.templates.template import Message

    out: list[Any] = []
    ordered: Media = {kind: [] for kind in MEDIA_KINDS}
    user_turn = -1
    for turn in turns:
        if turn.role == "user":
            user_turn += 1
            attached = media.get(user_turn, {})
            lead = ""
            for kind in MEDIA_KINDS:
                ordered[kind] += attached.get(kind, [])
                lead += PLACEHOLDERS[kind] * len(attached.get(kind, []))
            turn = Message("user", lead + turn.content)
        out.append(turn)
    return out, {kind: items for kind, items in ordered.items() if items}


def answer_turns(lang: str, answer: str, calls: tuple[Any, ...], thought_words: tuple[str, str] | None) -> list[Turn]:
    """The chatbot messages of one answer: its thought folded, its text, each tool call folded as a call."""
    from lmforge.data.templates.messages import split_thought

    thought, rest = split_thought(answer, *thought_words) if thought_words else (None, answer)
    turns: list[Turn] = []
    if thought:
        turns.append({"role": "assistant", "content": thought,
                      "metadata": {"title": text(lang, "thinking"), "status": "done"}})
    if rest.strip() or not calls:
        turns.append({"role": "assistant", "content": rest})
    for call in calls:
        turns.append({"role": "assistant", "content": f"```json\n{call.arguments_json()}\n```",
                      "metadata": {"title": f"{text(lang, 'tool_call')}: {call.name}", "status": "done"}})
    return turns


def candidates_html(candidates: list[Any]) -> str:
    """Candidates side by side, each with its log-probability (and its tool calls)."""
    cards = []
    for number, candidate in enumerate(candidates, start=1):
        logprob = f"{candidate.logprob:.2f}" if candidate.logprob is not None else "-"
        calls = "".join(f"<div class='call'><code>{html.escape(c.name)}({html.escape(c.arguments_json())})</code>"
                        f"</div>" for c in candidate.tool_calls)
        cards.append(f"<div class='candidate' style='flex:1;border:1px solid #ccc;border-radius:8px;padding:8px'>"
                     f"<b>#{number}</b> · logprob <span class='logprob'>{logprob}</span>"
                     f"<div style='white-space:pre-wrap'>{html.escape(candidate.text)}</div>{calls}</div>")
    return f"<div class='candidates' style='display:flex;gap:8px'>{''.join(cards)}</div>"


def chat_turn(state: UiState, lang: str, history: list[Turn], message: str, image: str | None, video: str | None,
              audio: str | None, system: str, tools_spec: str, n: float, method: str, diversity: float,
              max_new_tokens: float, temperature: float, top_p: float, top_k: float,
              repetition_penalty: float) -> Iterator[tuple[list[Turn], str]]:
    import gradio as gr

    from lmforge.data.templates.template import Message
    from lmforge.serve.media import MediaPolicy

    if state.engine is None:
        raise gr.Error(text(lang, "load_first"))
    if not message.strip():
        raise gr.Error(text(lang, "type_message"))
    engine = state.engine
    try:
        tools = read_tools(tools_spec)
        attached = {"images": [MediaPolicy(allowed_dirs=(Path(image).parent,)).load(image)] if image else [],
                    "videos": [video] if video else [], "audios": [audio] if audio else []}  # uploaded files
        engine.check_inputs(images=attached["images"], tools=tools, videos=attached["videos"],
                            audios=attached["audios"])
        options = engine.options(n=int(n), method=method, max_new_tokens=int(max_new_tokens),
                                 temperature=float(temperature), top_p=float(top_p), top_k=int(top_k),
                                 repetition_penalty=float(repetition_penalty), diversity_penalty=float(diversity),
                                 do_sample=True, **search_sizes(method, int(n)))
    except LmforgeError as err:
        raise gr.Error(str(err)) from None
    turns = [Message(turn["role"], content_text(turn["content"])) for turn in history
             if turn["role"] in ("user", "assistant") and not turn.get("metadata")]
    turns.append(Message("user", message))
    users = sum(turn.role == "user" for turn in turns)
    state.chat_media = {k: v for k, v in state.chat_media.items() if k < users}
    if any(attached.values()):
        state.chat_media[users - 1] = {kind: items for kind, items in attached.items() if items}
    turns, media = with_placeholders(turns, state.chat_media)
    history = [*history, {"role": "user", "content": message}]
    inputs = {**media, "tools": tools}
    words = engine.template.thought_words
    try:
        if options.n == 1:
            answer, calls = "", ()
            for delta in engine.stream_candidates(turns, system or None, options, **inputs):
                answer += delta.text
                calls = delta.tool_calls or calls
                yield [*history, {"role": "assistant", "content": answer}], ""
            yield [*history, *answer_turns(lang, answer, calls, words)], ""
            return
        candidates = engine.candidates(turns, system or None, options, **inputs)
    except LmforgeError as err:
        raise gr.Error(str(err)) from None
    best = candidates[0]
    yield ([*history, *answer_turns(lang, best.content or best.text if best.tool_calls else best.text,
                                    best.tool_calls, words)], candidates_html(candidates))


def build(texts: Texts, state: UiState, top: dict[str, Any], initial: dict[str, Any], language: Any,
          config: dict[str, Any] | None = None) -> tuple[Any, list[Any], Any]:
    """The tab; returns its model loading (function, inputs, output), which `lmforge webchat` runs at start.
    `config`: a whole config whose keys (generation, thinking, backend) apply under the top bar's."""
    import gradio as gr

    with gr.Row():
        load = texts.bind(gr.Button(texts("load_model"), variant="primary", elem_id="load_model"), "load_model",
                          "value")
        unload = texts.bind(gr.Button(texts("unload_model"), elem_id="unload_model"), "unload_model", "value")
    status = gr.Markdown(texts("no_model"), elem_id="chat_status")
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(elem_id="chatbot", height=360, show_label=False)
            with gr.Row():
                message = texts.bind(gr.Textbox(label=texts("message"), scale=4, elem_id="chat_input"), "message")
                image = texts.bind(gr.Image(type="filepath", label=texts("image"), scale=1, elem_id="chat_image"),
                                   "image")
            with gr.Accordion(texts("video_audio"), open=False) as media_box:
                texts.bind(media_box, "video_audio")
                with gr.Row():
                    video = texts.bind(gr.Video(label=texts("video"), elem_id="chat_video", sources=["upload"]),
                                       "video")
                    audio = texts.bind(gr.Audio(type="filepath", label=texts("audio"), elem_id="chat_audio",
                                                sources=["upload"]), "audio")
            with gr.Row():
                send = texts.bind(gr.Button(texts("send"), variant="primary", elem_id="send"), "send", "value")
                clear = texts.bind(gr.Button(texts("clear"), elem_id="clear_chat"), "clear", "value")
        with gr.Column(scale=2):
            system = texts.bind(gr.Textbox(initial.get("default_system") or "", label=texts("system_prompt"),
                                           lines=2, elem_id="system_prompt"), "system_prompt")
            tools = texts.bind(gr.Code("", language="json", label=texts("tools"), elem_id="chat_tools"), "tools")
            n = texts.bind(gr.Slider(1, 8, value=1, step=1, label=texts("candidates"), elem_id="n_candidates"),
                           "candidates")
            method = texts.bind(gr.Dropdown(list(CANDIDATE_METHODS), value="sample", label=texts("candidate_method"),
                                            elem_id="candidate_method"), "candidate_method")
            diversity = texts.bind(gr.Slider(0, 5, value=1.0, label=texts("diversity")), "diversity")
            answer = int(initial.get("max_new_tokens", 256))  # 0 or less: LLaMA-Factory's `max_length` limits
            answer = min(answer if answer > 0 else int(initial.get("max_length", 1024)), 4096)
            max_new_tokens = texts.bind(gr.Slider(1, 4096, value=answer, step=1,
                                                  label=texts("max_new_tokens"), elem_id="max_new_tokens"),
                                        "max_new_tokens")
            temperature = texts.bind(gr.Slider(0.01, 2.0, value=float(initial.get("temperature", 0.95)),
                                               label=texts("temperature"), elem_id="temperature"), "temperature")
            top_p = texts.bind(gr.Slider(0.01, 1.0, value=float(initial.get("top_p", 0.7)), label=texts("top_p")),
                               "top_p")
            top_k = texts.bind(gr.Slider(0, 200, value=int(initial.get("top_k", 50)), step=1, label=texts("top_k")),
                               "top_k")
            penalty = texts.bind(gr.Slider(1.0, 2.0, value=float(initial.get("repetition_penalty", 1.0)),
                                           label=texts("repetition_penalty")), "repetition_penalty")
    candidates = gr.HTML(elem_id="candidates")

    def load_model(lang: str, *values: Any) -> str:
        chosen = form_config(dict(zip(top, values, strict=True)))
        chosen.pop("finetuning_type", None)
        try:
            return state.load_engine({**(config or {}), **chosen})
        except LmforgeError as err:
            raise gr.Error(str(err)) from None

    loading = [language, *top.values()]
    load.click(load_model, loading, status)
    unload.click(lambda lang: (state.close_engine(), text(lang, "no_model"))[1], language, status)
    inputs = [language, chatbot, message, image, video, audio, system, tools, n, method, diversity, max_new_tokens,
              temperature, top_p, top_k, penalty]
    send.click(partial(chat_turn, state), inputs, [chatbot, candidates])

    def clear_chat() -> tuple[list[Any], str]:
        state.chat_media = {}
        return [], ""

    clear.click(clear_chat, None, [chatbot, candidates])
    return load_model, loading, status
