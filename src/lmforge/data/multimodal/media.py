"""Media decoding: images (path, URL, bytes, PIL), videos (PyAV frame sampling), audio (resampled).

Every decoder takes the example's location (`where`, "file:row") so an unreadable file fails with
the row, the file and the reason. Remote URLs are fetched only with `allow_remote_media: true`.
"""

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.errors import DataError


class MediaError(DataError):
    """A media file is missing, unreadable, or does not match the example's placeholders."""


@dataclass(frozen=True)
class MediaOptions:
    """The data group's media keys (LLaMA-Factory's names and defaults)."""

    image_max_pixels: int = 768 * 768
    image_min_pixels: int = 32 * 32
    video_max_pixels: int = 256 * 256
    video_min_pixels: int = 16 * 16
    video_fps: float = 2.0
    video_maxlen: int = 128
    audio_sampling_rate: int = 16000
    allow_remote_media: bool = False
    use_audio_in_video: bool = False

    @classmethod
    def from_config(cls, data: Any) -> "MediaOptions":
        return cls(**{name: getattr(data, name) for name in cls.__dataclass_fields__})


@dataclass
class DecodedMedia:
    """One example's media, decoded once: PIL images, videos as lists of PIL frames, mono float32 audio."""

    images: list[Any] = field(default_factory=list)
    videos: list[list[Any]] = field(default_factory=list)
    video_fps: list[float] = field(default_factory=list)  # frames per second actually sampled, per video
    audios: list[Any] = field(default_factory=list)
    video_audios: list[Any] = field(default_factory=list)  # each video's sound (`use_audio_in_video`), in video order
    audio_sampling_rate: int = 16000
    names: dict[str, list[str]] = field(default_factory=dict)  # kind -> where each item came from, for errors

    def items(self, kind: str) -> list[Any]:
        return getattr(self, kind)

    def describe(self, kind: str, index: int) -> str:
        """`image 2 (photo.jpg)`: an item as an error names it."""
        names = self.names.get(kind, [])
        return f"{kind[:-1]} {index + 1}" + (f" ({names[index]})" if index < len(names) else "")


def _is_url(source: Any) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def _read_bytes(source: Any, options: MediaOptions, where: str) -> bytes | str:
    """A local path as it is, a URL's bytes (when allowed), or the `bytes` of a datasets Image dict."""
    if isinstance(source, dict):
        source = source.get("bytes") or source.get("path")
    if _is_url(source):
        if not options.allow_remote_media:
            raise MediaError(f"{where}: {source} is a remote URL; set `allow_remote_media: true` to fetch it")
        import urllib.request

        try:
            with urllib.request.urlopen(source, timeout=30) as response:  # http(s) only, checked above
                return response.read()
        except OSError as err:
            raise MediaError(f"{where}: cannot fetch {source}: {err}") from None
    if isinstance(source, bytes | str | Path):
        if not isinstance(source, bytes) and not Path(source).is_file():
            raise MediaError(f"{where}: media file not found: {source}")
        return source if isinstance(source, bytes) else str(source)
    raise MediaError(f"{where}: a media item must be a path, URL, bytes or PIL image, got {type(source).__name__}")


def _name(source: Any) -> str:
    return "<bytes>" if isinstance(source, bytes | dict) else str(source)


def resize_to_pixels(image: Any, max_pixels: int, min_pixels: int) -> Any:
    """Scale (keeping the aspect ratio) so width x height lies within [min_pixels, max_pixels]."""
    width, height = image.size
    pixels = width * height
    if pixels > max_pixels:
        scale = math.sqrt(max_pixels / pixels)
    elif pixels < min_pixels:
        scale = math.sqrt(min_pixels / pixels)
    else:
        return image
    return image.resize((max(1, int(width * scale)), max(1, int(height * scale))))


def load_image(source: Any, options: MediaOptions, where: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, Image.Image):
        image = source
    else:
        data = _read_bytes(source, options, where)
        try:
            image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
            image.load()
        except (UnidentifiedImageError, OSError) as err:
            raise MediaError(f"{where}: cannot read image {_name(source)}: {err}") from None
    return resize_to_pixels(image.convert("RGB"), options.image_max_pixels, options.image_min_pixels)


def sample_indices(total_frames: int, duration: float, fps: float, maxlen: int) -> list[int]:
    """Evenly spaced frame indices: `fps` frames per second of video, at most `maxlen`, at least 1."""
    wanted = max(1, min(maxlen, total_frames, math.floor(duration * fps)))
    return sorted({int(i * total_frames / wanted) for i in range(wanted)})


def load_video(source: Any, options: MediaOptions, where: str) -> tuple[list[Any], float]:
    """Sampled RGB frames (PIL) of a video and the rate they were sampled at (frames per second)."""
    import av

    data = _read_bytes(source, options, where)
    try:
        with av.open(io.BytesIO(data) if isinstance(data, bytes) else data) as container:
            stream = _stream(container.streams.video, "video", source, where)
            frames = [frame.to_image() for frame in container.decode(stream)]
            duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
    except (av.FFmpegError, OSError) as err:
        raise MediaError(f"{where}: cannot read video {_name(source)}: {err}") from None
    if not frames:
        raise MediaError(f"{where}: video {_name(source)} has no frames: re-encode it or remove it from the row")
    duration = duration or len(frames) / float(stream.average_rate or 1)
    picked = [frames[i] for i in sample_indices(len(frames), duration, options.video_fps, options.video_maxlen)]
    sampled = [resize_to_pixels(frame, options.video_max_pixels, options.video_min_pixels) for frame in picked]
    return sampled, len(sampled) / duration if duration else options.video_fps


def _stream(streams: Any, kind: str, source: Any, where: str, missing: str | None = None) -> Any:
    """The first `kind` stream of a container: a file without one (an image or a silent video in the `audios`
    column, an audio file in `videos`) is not that medium. `missing`: the message when there is none."""
    if not streams:
        raise MediaError(f"{where}: " + (missing or f"{_name(source)} has no {kind} stream: it is not "
                                         f"a{'n' * (kind == 'audio')} {kind} file (check the row's `{kind}s` column)"))
    return streams[0]


def load_audio(source: Any, options: MediaOptions, where: str, missing: str | None = None) -> Any:
    """Mono float32 samples resampled to `audio_sampling_rate` (decoded and resampled by PyAV/FFmpeg): audio at
    any rate and channel count is converted, never refused; the processor receives this rate. `source` may be a
    video file (its audio track); `missing`: the message when it has no audio stream."""
    import av
    import numpy as np

    data = _read_bytes(source, options, where)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=options.audio_sampling_rate)
    chunks: list[Any] = []
    try:
        with av.open(io.BytesIO(data) if isinstance(data, bytes) else data) as container:
            for frame in container.decode(_stream(container.streams.audio, "audio", source, where, missing)):
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.FFmpegError, OSError) as err:
        raise MediaError(f"{where}: cannot read audio {_name(source)}: {err}") from None
    if not chunks:
        raise MediaError(f"{where}: audio {_name(source)} has no samples")
    return np.concatenate(chunks).astype(np.float32)


def decode_media(media: dict[str, list[Any]], options: MediaOptions, where: str) -> DecodedMedia:
    """Decode each of an example's media items once."""
    decoded = DecodedMedia(audio_sampling_rate=options.audio_sampling_rate,
                           names={kind: [_name(item) for item in items] for kind, items in media.items()})
    decoded.images = [load_image(item, options, where) for item in media.get("images", [])]
    for item in media.get("videos", []):
        frames, fps = load_video(item, options, where)
        decoded.videos.append(frames)
        decoded.video_fps.append(fps)
    decoded.audios = [load_audio(item, options, where) for item in media.get("audios", [])]
    decoded.video_audios = [
        load_audio(item, options, where, missing=f"{_name(item)}, a video's sound (`use_audio_in_video: true`), has "
                   "no audio track: give the video's sound as an `<audio>` right after its `<video>`, or set "
                   "`use_audio_in_video: false`")
        for item in media.get("video_audios", [])]
    return decoded
