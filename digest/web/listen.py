"""Where `digest serve` listens, and the address its links use.

The socket is bound here, before uvicorn starts, so that a port already in use is one line and
its own exit code (11, README "Exit codes") instead of uvicorn's log and exit 1.
"""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit, urlunsplit

from digest.config import Settings
from digest.errors import PortInUseError, UsageError

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), for uvicorn to listen on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise bind_error(exc, host, port) from None
    sock.set_inheritable(True)
    return sock


def bind_error(exc: OSError, host: str, port: int) -> Exception:
    """Why (host, port) cannot be listened on, in words a person can act on."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return PortInUseError(
            f"port {port} is already in use on {host} (another `digest serve`?): stop it, or "
            "choose another port with --port or [web] port"
        )
    if exc.errno == errno.EACCES:
        return UsageError(
            f"cannot listen on {where}: permission denied (ports below 1024 need root)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"cannot listen on {where}: {host} is not an address of this machine")
    if isinstance(exc, socket.gaierror):
        return UsageError(f"cannot listen on {where}: unknown host {host!r} (--host or [web] host)")
    return UsageError(f"cannot listen on {where}: {exc.strerror or exc}")


def served_settings(settings: Settings, port: int) -> Settings:
    """The settings the app runs with: a loopback [web] base_url that names the configured
    [web] port (the demo's, a developer's) follows the port actually served, so the links in
    confirmation emails reach this server. A public base_url is never changed: a proxy
    stands in front of it."""
    base = urlsplit(settings.web.base_url)
    configured = base.port or (443 if base.scheme == "https" else 80)
    if (base.hostname or "") not in _LOOPBACK or configured != settings.web.port:
        return settings
    if port == configured:
        return settings
    netloc = (
        f"[{base.hostname}]:{port}" if ":" in (base.hostname or "") else f"{base.hostname}:{port}"
    )
    url = urlunsplit((base.scheme, netloc, base.path, "", "")).rstrip("/")
    web = settings.web.model_copy(update={"base_url": url})
    return settings.model_copy(update={"web": web})
