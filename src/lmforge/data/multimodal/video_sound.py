"""`use_audio_in_video`: which sound goes with each video of an example.

A model that interleaves a video's sound with its frames by time (Qwen2.5-Omni, Qwen3-Omni) gets, per video,
one audio clip processed together with it. LLaMA-Factory's rows name that clip with an `<audio>` placed right
after its `<video>` (`<video><audio>`, the file in the `audios` column): that clip is the video's sound and its
placeholder goes (the video's token run holds both). A `<video>` with no `<audio>` right after it has the audio
track of its own file as its sound. The sources are kept under `VIDEO_SOUNDS` in the example's media, in video
order, so decoding and the media cache see them like any other item.
"""

import re
from typing import Any

from lmforge.data.multimodal.media import MediaError

VIDEO_SOUNDS = "video_audios"  # media key: each video's sound source (an audio file, or the video file itself)
_PLACEHOLDER = re.compile(r"<video><audio>|<video>|<audio>")


def pair_video_sounds(texts: list[str], media: dict[str, list[Any]],
                      where: str) -> tuple[list[str], dict[str, list[Any]]]:
    """`texts` (an example's messages or document, in order) without the `<audio>` of each `<video><audio>`
    pair, and `media` with each video's sound under `VIDEO_SOUNDS` and only the standalone clips in `audios`.
    Placeholder counts are checked before."""
    videos, audios = list(media.get("videos", [])), list(media.get("audios", []))
    if not videos or VIDEO_SOUNDS in media:  # nothing to pair, or paired already
        return texts, media
    sounds: list[Any] = []
    standalone: list[Any] = []
    state = {"video": 0, "audio": 0}

    def place(match: re.Match[str]) -> str:
        found = match.group(0)
        if found == "<audio>":
            if state["video"] < len(videos):
                # one audio key (`input_features`) holds every clip of an example: videos' sounds first
                raise MediaError(f"{where}: an `<audio>` placeholder stands before a `<video>`; with "
                                 "`use_audio_in_video: true` a clip of its own must come after the example's "
                                 "videos (or be a video's sound: right after its `<video>`)")
            standalone.append(audios[state["audio"]])
            state["audio"] += 1
            return found
        video = videos[state["video"]]
        state["video"] += 1
        if found == "<video>":
            sounds.append(video)
            return found
        sounds.append(audios[state["audio"]])
        state["audio"] += 1
        return "<video>"

    texts = [_PLACEHOLDER.sub(place, text) for text in texts]
    return texts, {**media, "audios": standalone, VIDEO_SOUNDS: sounds}
