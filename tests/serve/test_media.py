"""The image input policy: data URLs, remote fetching (off by default, never private), allowed folders."""

import base64
import http.server
import io
import threading

import pytest
from PIL import Image

from lmforge.serve.media import MediaPolicy, MediaReferenceError, is_public_address


def png_bytes(size=(4, 4)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def data_url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def test_data_url_round_trip_and_limits():
    image = png_bytes()
    assert MediaPolicy().load(data_url(image)) == image
    with pytest.raises(MediaReferenceError, match="the limit is 100 bytes"):
        MediaPolicy(max_bytes=100).load(data_url(png_bytes((64, 64)) + b"\0" * 200))
    with pytest.raises(MediaReferenceError, match="not valid base64"):
        MediaPolicy().load("data:image/png;base64,@@@")
    with pytest.raises(MediaReferenceError, match="must look like"):
        MediaPolicy().load("data:text/plain;base64,aGk=")
    with pytest.raises(MediaReferenceError, match="not an image"):
        MediaPolicy().load(data_url(b"just text, not pixels"))


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:8.8.8.8", True),
])
def test_public_addresses(address, public):
    assert is_public_address(address) is public


def test_remote_fetching_is_off_by_default():
    with pytest.raises(MediaReferenceError, match="fetching remote images is off"):
        MediaPolicy().load("https://example.com/cat.png")


@pytest.mark.parametrize("url", ["http://127.0.0.1/x.png", "http://localhost/x.png", "http://2130706433/x.png",
                                 "http://[::1]/x.png", "http://169.254.169.254/latest/meta-data/",
                                 "http://10.0.0.1:8080/x.png"])
def test_loopback_and_private_hosts_are_never_fetched(url):
    with pytest.raises(MediaReferenceError, match="non-public address"):
        MediaPolicy(allow_remote=True).load(url)


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/x.png", "unsupported image URL scheme"),
    ("http://user:pw@example.com/x.png", "must not carry credentials"),
])
def test_odd_urls_are_refused(url, message):
    with pytest.raises(MediaReferenceError, match=message):
        MediaPolicy(allow_remote=True).load(url)


def test_local_paths_only_inside_allowed_folders(tmp_path):
    allowed = tmp_path / "images"
    allowed.mkdir()
    (allowed / "cat.png").write_bytes(png_bytes())
    (tmp_path / "secret.png").write_bytes(png_bytes())
    (allowed / "escape.png").symlink_to(tmp_path / "secret.png")
    policy = MediaPolicy(allowed_dirs=(allowed,))
    assert policy.load(str(allowed / "cat.png")) == png_bytes()
    assert policy.load(f"file://{allowed / 'cat.png'}") == png_bytes()
    for refused in (tmp_path / "secret.png", allowed / ".." / "secret.png", allowed / "escape.png"):
        with pytest.raises(MediaReferenceError, match="refused unless inside an allowed folder"):
            policy.load(str(refused))
    with pytest.raises(MediaReferenceError, match="refused unless inside an allowed folder"):
        MediaPolicy().load(str(allowed / "cat.png"))  # no allowed folder: no local paths at all
    with pytest.raises(MediaReferenceError, match="the limit is 10 bytes"):
        MediaPolicy(allowed_dirs=(allowed,), max_bytes=10).load(str(allowed / "cat.png"))


class _Images(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/cat.png":
            body = png_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big.png":
            self.send_response(200)  # no Content-Length: the limit must hold while reading
            self.end_headers()
            self.wfile.write(png_bytes() + b"\0" * 5000)
        else:
            self.send_response(302)
            self.send_header("Location", "http://internal.example/cat.png")
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def image_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _stand_in_policy(**kwargs):
    """127.0.0.1 plays a public host here; `internal.example` a private one."""
    hosts = {"127.0.0.1": ["127.0.0.1"], "internal.example": ["10.0.0.5"]}
    return MediaPolicy(allow_remote=True, address_allowed=lambda address: address == "127.0.0.1",
                       resolve=lambda host, port: hosts[host], **kwargs)


def test_fetch_reads_within_the_limit_and_rechecks_redirects(image_server):
    policy = _stand_in_policy(max_bytes=1000)
    assert policy.load(f"http://127.0.0.1:{image_server}/cat.png") == png_bytes()
    with pytest.raises(MediaReferenceError, match="the limit is 1,000 bytes"):
        policy.load(f"http://127.0.0.1:{image_server}/big.png")
    with pytest.raises(MediaReferenceError, match=r"`internal\.example` resolves to a non-public address"):
        policy.load(f"http://127.0.0.1:{image_server}/redirect")


def test_connected_address_is_checked_again(image_server):
    # the resolver (as a rebinding DNS server would) says public, but the connection lands on loopback
    policy = MediaPolicy(allow_remote=True, resolve=lambda host, port: ["93.184.216.34"])
    with pytest.raises(MediaReferenceError, match="connected to a non-public address"):
        policy.load(f"http://localhost:{image_server}/cat.png")
