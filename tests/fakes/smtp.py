"""A real SMTP server (aiosmtpd) on 127.0.0.1 with STARTTLS or implicit TLS, AUTH, and
scriptable answers per recipient; plus a self-signed certificate and DKIM keys made here."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

USER, PASSWORD = "mailer", "s3cret-pass"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost, its own CA: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def dkim_keys(directory: Path) -> tuple[Path, bytes]:
    """An RSA key for DKIM: (private key PEM path, the DNS TXT record that publishes it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@dataclass
class Handler:
    refuse: dict[str, str] = field(default_factory=dict)  # address → SMTP reply to RCPT
    drop_on_data: set[str] = field(default_factory=set)  # close the connection at DATA
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)

    @property
    def connections(self) -> int:
        return len(self.peers)

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        self.peers.add(session.peer)
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if set(envelope.rcpt_tos) & self.drop_on_data:
            server.transport.close()
            return "250 OK"
        self.messages.append(
            (
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or b""),
            )
        )
        return "250 Message accepted"


def _authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smtp_server(
    handler: Handler, cert: Path, key: Path, *, implicit_tls: bool = False
) -> Controller:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    options: dict[str, Any] = {
        "authenticator": _authenticate,
        "auth_required": True,
        "auth_require_tls": True,
    }
    if implicit_tls:
        # aiosmtpd only counts STARTTLS as TLS (tests silence its warning); all of it is TLS.
        options["auth_require_tls"] = False
        return Controller(
            handler,
            hostname="127.0.0.1",
            port=free_port(),
            ssl_context=context,
            server_hostname="localhost",
            **options,
        )
    return Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        **options,
    )


class Sink:
    """An aiosmtpd handler that takes every message and counts it (the benchmark's server)."""

    def __init__(self) -> None:
        self.messages = 0
        self.recipients: set[str] = set()
        self.duplicates = 0

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.recipients:
                self.duplicates += 1
            self.recipients.add(rcpt)
        return "250 Message accepted"


def main() -> None:
    """`python -m tests.fakes.smtp`: a plain SMTP sink on 127.0.0.1 in a process of its own
    (the benchmark's); prints host:port, serves until stdin closes, then prints its counts."""
    import json
    import sys

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    print(f"{controller.hostname}:{controller.port}", flush=True)
    sys.stdin.read()
    controller.stop()
    counts = {"messages": sink.messages, "unique": len(sink.recipients)}
    print(json.dumps({**counts, "duplicates": sink.duplicates}), flush=True)


if __name__ == "__main__":
    main()
