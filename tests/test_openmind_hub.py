"""`model_hub: openmind` (or LLaMA-Factory's USE_OPENMIND_HUB=1) and `om_hub_token`: hub ids download through
openmind_hub, whose requests reach a local stand-in for the Modelers hub (no network) with the token, and the token
is never shown: not in the saved config, not in the error a failed download raises. openmind_hub only talks HTTPS,
so the stand-in serves a certificate made for 127.0.0.1 that requests is told to trust (REQUESTS_CA_BUNDLE)."""

import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.util import find_spec
from typing import Any, ClassVar

import pytest

# Not imported here: openmind_hub reads its endpoint once, at import, which must come after the stand-in starts.
pytestmark = pytest.mark.skipif(find_spec("openmind_hub") is None, reason="needs the openmind extra")
x509 = pytest.importorskip("cryptography.x509")

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from lmforge.config import build_config  # noqa: E402
from lmforge.errors import ModelError  # noqa: E402
from lmforge.hub.resolve import check_model_reference  # noqa: E402
from lmforge.model.loading import model_path  # noqa: E402

SECRET = "om-secret-4242"


class _NotFoundHub(BaseHTTPRequestHandler):
    """Answers every request as a hub does for a repository it does not have, and keeps the request."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"code": "repo_not_exists", "msg": "not found"}')

    def log_message(self, *args: Any) -> None:
        pass


def _certificate(folder: Any) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "hub.pem", folder / "hub.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory):
    # One stand-in for the module: openmind_hub keeps the endpoint it first read for the process.
    cert_file, key_file = _certificate(tmp_path_factory.mktemp("tls"))
    server = HTTPServer(("127.0.0.1", 0), _NotFoundHub)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("HF_HUB_OFFLINE", raising=False)
        patch.setenv("OPENMIND_HUB_ENDPOINT", f"https://127.0.0.1:{server.server_port}")
        patch.setenv("REQUESTS_CA_BUNDLE", cert_file)
        yield _NotFoundHub.seen
    server.shutdown()


@pytest.fixture
def requests_seen(local_hub):
    local_hub.clear()
    return local_hub


def test_om_hub_token_reaches_the_openmind_download_and_is_never_shown(requests_seen, tmp_path):
    cfg = build_config({"model_name_or_path": "someone/private-model", "model_hub": "openmind",
                        "om_hub_token": SECRET, "cache_dir": str(tmp_path)})
    assert SECRET not in str(cfg.model_dump(mode="json")) and SECRET not in repr(cfg.model)
    with pytest.raises(ModelError, match=r"`model_name_or_path: someone/private-model`: the openMind \(Modelers\) "
                                         r"download failed .*`om_hub_token`") as err:
        model_path(cfg.model)
    assert SECRET not in str(err.value)
    path, headers = requests_seen[0]
    assert "someone/private-model" in path and "ref=main" in path  # openMind's default branch is `main`, as on HF
    assert headers["authorization"] == f"Bearer {SECRET}"


def test_use_openmind_hub_picks_the_hub_and_other_hubs_tokens_stay_home(requests_seen, tmp_path, monkeypatch):
    monkeypatch.setenv("USE_OPENMIND_HUB", "1")
    cfg = build_config({"model_name_or_path": "someone/private-model", "ms_hub_token": "ms-secret",
                        "hf_hub_token": "hf-secret", "cache_dir": str(tmp_path), "model_revision": "v1"})
    assert cfg.model.model_hub == "openmind"
    with pytest.raises(ModelError, match="the openMind \\(Modelers\\) download failed"):
        model_path(cfg.model)
    path, headers = requests_seen[0]
    assert "ref=v1" in path and "authorization" not in headers


def test_offline_names_the_id_and_how_to_fetch_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"`model_name_or_path: someone/model` comes from openMind \(Modelers\), "
                                         r"and no hub is reachable \(HF_HUB_OFFLINE=1\): download it where a hub is "
                                         r"reachable \(`python -c .*snapshot_download\('someone/model', "
                                         r"local_dir='DIR'\)"):
        check_model_reference("someone/model", hub="openmind")


def test_a_registered_name_has_no_openmind_id():
    with pytest.raises(ModelError, match=r"`Qwen2.5-7B-Instruct` has no openMind id in lmforge's registry: set "
                                         r"`model_name_or_path` to its Modelers id"):
        check_model_reference("Qwen2.5-7B-Instruct", hub="openmind")
