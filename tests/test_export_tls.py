"""TLS to the backend: a private CA, a client certificate, and the insecure switch with its warning."""

from __future__ import annotations

import logging
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from stub_backend import Reply, StubBackend
from test_export import make_config, sample_events

from logtail.export import ExportGaveUp, build_sink
from logtail.service.selfmetrics import SelfMetrics
from parsers.event import Event

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA, a server certificate for localhost and a client certificate, all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext", cwd=d,
        )  # fmt: skip
    return d


def server_context(pki: Path, *, client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    if client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki / "ca.pem")
    return context


@pytest.fixture(scope="module")
def events(samples: Path) -> list[Event]:
    return sample_events(samples)[:20]


def ship(backend: StubBackend, tmp_path: Path, events: list[Event], **tls: Any) -> int:
    config = make_config(tmp_path, endpoint=backend.endpoint, tls=tls)
    sink = build_sink(config, self_metrics=SelfMetrics(), stop=threading.Event(), retry_deadline=0.5)
    try:
        sink.ship(events)
    finally:
        sink.close()
    return sink.summary.acknowledged


def test_a_private_ca_is_trusted_when_given(pki: Path, tmp_path: Path, events: list[Event]) -> None:
    with StubBackend(lambda records: Reply(), server_context(pki)) as backend:
        assert ship(backend, tmp_path, events, ca_file=str(pki / "ca.pem")) == len(events)
    assert len(backend.stored) == len(events)


def test_an_unknown_ca_is_not_trusted(pki: Path, tmp_path: Path, events: list[Event]) -> None:
    with (
        StubBackend(lambda records: Reply(), server_context(pki)) as backend,
        pytest.raises(ExportGaveUp, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        ship(backend, tmp_path, events)
    assert backend.stored == []


def test_insecure_skips_verification_and_says_so(
    pki: Path, tmp_path: Path, events: list[Event], caplog: pytest.LogCaptureFixture
) -> None:
    with StubBackend(lambda records: Reply(), server_context(pki)) as backend, caplog.at_level(logging.WARNING):
        assert ship(backend, tmp_path, events, insecure=True) == len(events)
    assert "TLS CERTIFICATE VERIFICATION IS OFF" in caplog.text


def test_a_client_certificate_is_presented(pki: Path, tmp_path: Path, events: list[Event]) -> None:
    with StubBackend(lambda records: Reply(), server_context(pki, client_cert=True)) as backend:
        with pytest.raises(ExportGaveUp):  # the server requires a client certificate
            ship(backend, tmp_path, events, ca_file=str(pki / "ca.pem"))
        mine = {
            "ca_file": str(pki / "ca.pem"),
            "cert_file": str(pki / "client.pem"),
            "key_file": str(pki / "client.key"),
        }
        assert ship(backend, tmp_path, events, **mine) == len(events)
