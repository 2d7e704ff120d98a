"""`ms_hub_token`: the token reaches ModelScope's download requests (a local stand-in for the hub records them,
no network) and is never shown: not in the saved config, not in the error a failed download raises."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

pytest.importorskip("modelscope")

from lmforge.config import build_config
from lmforge.errors import ModelError
from lmforge.model.loading import model_path

SECRET = "ms-secret-4242"


class _NotFoundHub(BaseHTTPRequestHandler):
    """Answers every request as ModelScope does for a repository it does not have, and keeps the request."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, dict(self.headers)))
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"Code": 404, "Message": "not found"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def local_hub():
    # One stand-in for the module: modelscope keeps the endpoint it first read for the process.
    server = HTTPServer(("127.0.0.1", 0), _NotFoundHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("HF_HUB_OFFLINE", raising=False)
        patch.delenv("MODELSCOPE_API_TOKEN", raising=False)
        patch.setenv("MODELSCOPE_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        yield _NotFoundHub.seen
    server.shutdown()


@pytest.fixture
def requests_seen(local_hub):
    local_hub.clear()
    return local_hub


def test_ms_hub_token_reaches_the_modelscope_download_and_is_never_shown(requests_seen, tmp_path):
    cfg = build_config({"model_name_or_path": "me/private-model", "model_hub": "modelscope",
                        "ms_hub_token": SECRET, "cache_dir": str(tmp_path)})
    assert SECRET not in str(cfg.model_dump(mode="json")) and SECRET not in repr(cfg.model)
    with pytest.raises(ModelError, match=r"`model_name_or_path: me/private-model`: the ModelScope download failed "
                                         r".*`ms_hub_token`") as err:
        model_path(cfg.model)
    assert SECRET not in str(err.value)
    path, headers = requests_seen[0]
    assert "/models/me/private-model/" in path and "Revision=master" in path  # `main` is ModelScope's `master`
    assert headers["Authorization"] == f"Bearer {SECRET}"


def test_without_ms_hub_token_no_token_is_sent(requests_seen, tmp_path):
    cfg = build_config({"model_name_or_path": "me/private-model", "model_hub": "modelscope",
                        "cache_dir": str(tmp_path), "model_revision": "v1"})
    with pytest.raises(ModelError, match="the ModelScope download failed"):
        model_path(cfg.model)
    path, headers = requests_seen[0]
    assert "Revision=v1" in path and "Authorization" not in headers
