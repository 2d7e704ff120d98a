"""Where images, videos and audios may come from, and how big they may be: data URLs, opt-in remote URLs,
allowed folders.

Remote fetching is off unless enabled, and never reaches loopback, private, link-local, multicast or
reserved addresses: every address a host resolves to is checked before connecting, the address
actually connected to is checked again (DNS rebinding), redirects are followed by hand and checked
the same way, and proxies from the environment are ignored. Local paths are refused unless they
resolve (symlinks followed) inside an allowed folder. Every source is size-limited while it is read.
Images must decode here (PIL); videos and audios are decoded by the engine, whose errors name the medium.
"""

import base64
import binascii
import io
import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from lmforge.errors import LmforgeError

MAX_REDIRECTS = 3
NOUNS = {"images": "image", "videos": "video", "audios": "audio"}  # medium -> one item's word and MIME type


class MediaReferenceError(LmforgeError):
    """A media reference is malformed, too big, or not allowed by the media policy."""


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses; IPv4-mapped IPv6 is judged as its IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local)


def resolve_host(host: str, port: int) -> list[str]:
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except (socket.gaierror, UnicodeError) as err:
        raise MediaReferenceError(f"cannot resolve host `{host}`: {err}") from None


@dataclass(frozen=True)
class MediaPolicy:
    max_bytes: int = 10 * 1024 * 1024
    allow_remote: bool = False
    allowed_dirs: tuple[Path, ...] = ()
    timeout_s: float = 10.0
    # injectable so tests can stand a local server in for a public one; production keeps the defaults
    address_allowed: Callable[[str], bool] = field(default=is_public_address, repr=False)
    resolve: Callable[[str, int], list[str]] = field(default=resolve_host, repr=False)

    def load(self, reference: str, kind: str = "images") -> bytes:
        """The bytes of one image (or video, audio: `kind`) behind a data URL, an http(s) URL or a local path,
        if the policy allows it."""
        noun = NOUNS[kind]
        if reference.startswith("data:"):
            data = self._data_url(reference, noun)
        elif reference.startswith(("http://", "https://")):
            data = self._fetch(reference, noun)
        elif "://" in reference and not reference.startswith("file://"):
            raise MediaReferenceError(f"unsupported {noun} URL scheme in `{reference[:40]}`: use a data URL, "
                                      "http(s) or a path")
        else:
            data = self._local(reference.removeprefix("file://"), noun)
        if kind == "images":
            _check_image(data)
        return data

    def load_all(self, references: Sequence[str], kind: str = "images") -> list[bytes]:
        return [self.load(reference, kind) for reference in references]

    def load_base64(self, payload: str, kind: str, what: str = "") -> bytes:
        """Base64 data sent inline (an OpenAI `input_audio` part), size-limited before anything is decoded;
        `what` names it in errors (default: the `kind`'s data)."""
        noun = NOUNS[kind]
        if len(payload) > (self.max_bytes * 4) // 3 + 4:
            raise self._too_big(len(payload) * 3 // 4, noun)
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise MediaReferenceError(f"{what or f'the {noun} data'} is not valid base64") from None

    def _too_big(self, size: int, noun: str) -> MediaReferenceError:
        return MediaReferenceError(f"{noun} is {size:,} bytes or more; the limit is {self.max_bytes:,} bytes")

    def _data_url(self, url: str, noun: str) -> bytes:
        header, sep, payload = url.partition(",")
        if not sep or not header.startswith(f"data:{noun}/") or not header.endswith(";base64"):
            raise MediaReferenceError(f"{_a(noun)} data URL must look like `data:{noun}/<type>;base64,<data>`")
        return self.load_base64(payload, f"{noun}s", f"the {noun} data URL")

    def _local(self, path_text: str, noun: str) -> bytes:
        path = Path(path_text).expanduser()
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise MediaReferenceError(f"{noun} file not found: {path}") from None
        if not any(real.is_relative_to(folder.expanduser().resolve()) for folder in self.allowed_dirs):
            allowed = ", ".join(str(folder) for folder in self.allowed_dirs) or "none"
            raise MediaReferenceError(f"local {noun} paths are refused unless inside an allowed folder "
                                      f"(allowed: {allowed}): {path}")
        if not real.is_file():
            raise MediaReferenceError(f"not a file: {path}")
        if real.stat().st_size > self.max_bytes:
            raise self._too_big(real.stat().st_size, noun)
        return real.read_bytes()

    def _check_url(self, url: str, noun: str) -> tuple[str, int]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MediaReferenceError(f"{noun} URLs must be http(s) with a host: {url[:80]}")
        if parts.username or parts.password:
            raise MediaReferenceError(f"{noun} URLs must not carry credentials")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = self.resolve(parts.hostname, port)
        blocked = [address for address in addresses if not self.address_allowed(address)]
        if not addresses or blocked:
            raise MediaReferenceError(f"{noun} host `{parts.hostname}` resolves to a non-public address "
                                      f"({', '.join(blocked) or 'none'}); loopback and private networks are never "
                                      "fetched")
        return parts.hostname, port

    def _fetch(self, url: str, noun: str) -> bytes:
        if not self.allow_remote:
            raise MediaReferenceError(f"fetching remote {noun}s is off; send the {noun} as a data URL, or start the "
                                      "server with --allow-remote-images")
        import httpx

        with httpx.Client(trust_env=False, follow_redirects=False, timeout=self.timeout_s) as client:
            for _ in range(MAX_REDIRECTS + 1):
                self._check_url(url, noun)
                with client.stream("GET", url) as response:
                    peer = response.extensions["network_stream"].get_extra_info("server_addr")
                    if peer is None or not self.address_allowed(peer[0]):
                        raise MediaReferenceError(f"{noun} host of {url[:80]} connected to a non-public address")
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise MediaReferenceError(f"fetching {url[:80]} failed: HTTP {response.status_code}")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > self.max_bytes:
                        raise self._too_big(declared, noun)
                    body = io.BytesIO()
                    for chunk in response.iter_bytes():
                        body.write(chunk)
                        if body.tell() > self.max_bytes:
                            raise self._too_big(body.tell(), noun)
                    return body.getvalue()
        raise MediaReferenceError(f"more than {MAX_REDIRECTS} redirects fetching {_a(noun)}")


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _check_image(data: bytes) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise MediaReferenceError("the data is not an image PIL can read (png, jpeg, gif, webp, bmp ...)") from None
