"""Who may reach a review station and what they may fetch: its own origin, a token, the review folder only.

Every HTTP request, the page's websocket included, passes :func:`guard` in this order:

1. ``Host`` must name the station (the host it prints, 127.0.0.1 / localhost / [::1] when it listens on
   loopback, and the hosts of ``--origin``), with its port: anything else is a DNS-rebinding page (403).
2. ``Origin``, when present, must be the station's own origin (``http://HOST:PORT`` for those hosts) or
   one given with ``--origin`` (a reverse proxy's): a page of any other site gets 403.
3. The token, always required (generated and printed in the URL unless ``--token``): ``?token=...`` on
   the first request (the answer sets an HttpOnly, SameSite=Strict cookie holding a value derived from
   it) or that cookie. Wrong tokens are throttled per address (:class:`Throttle`); none gets 403.

The page itself (``/`` or ``/index.html``) is sent to ``index.html?secret=...``: the per-run wslink
secret that trame's page reads from its URL (and removes from the address bar) to open its websocket,
so that the public default ``wslink-secret`` opens nothing. ``/files/<path>`` serves files inside the
review folder only: paths are resolved (``..`` and symlinks included); outside the folder is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import string
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from ..contract import ConfidenceSegError

TOKEN_PARAMETER = "token"
#: The URL parameter from which trame's page takes the websocket secret.
SECRET_PARAMETER = "secret"
#: Cookie name (the port is appended: stations on one machine share the browser's cookies per host).
TOKEN_COOKIE = "confidenceseg_station"
#: URL prefix of the review folder's files.
FILES_ROUTE = "/files/"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: A given token: at least this long, this many different characters and this many bits (see :func:`token_bits`).
MIN_TOKEN_LENGTH, MIN_TOKEN_DISTINCT, MIN_TOKEN_BITS = 22, 10, 128
#: Character classes of a token and their sizes.
TOKEN_CLASSES = ((string.ascii_lowercase, 26), (string.ascii_uppercase, 26), (string.digits, 10),
                 (string.punctuation, 32))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def token_bits(token: str) -> float:
    """Estimated entropy: length x log2(size of the character classes the token uses)."""
    alphabet = sum(size for characters, size in TOKEN_CLASSES if any(c in characters for c in token))
    return len(token) * math.log2(alphabet) if alphabet > 1 else 0.0


def check_token(token: str) -> str:
    """``token`` when strong enough: printable ASCII, no spaces, >= 22 characters, >= 10 different
    characters and >= 128 bits by :func:`token_bits` (``openssl rand -hex 16`` and
    ``python -c "import secrets; print(secrets.token_urlsafe(16))"`` pass)."""
    if any(c not in string.ascii_letters + string.digits + string.punctuation for c in token):
        raise ConfidenceSegError("--token must be printable ASCII without spaces")
    if (len(token) < MIN_TOKEN_LENGTH or len(set(token)) < MIN_TOKEN_DISTINCT
            or token_bits(token) < MIN_TOKEN_BITS):
        raise ConfidenceSegError(f"--token is too weak: use at least {MIN_TOKEN_LENGTH} characters, "
                                 f"{MIN_TOKEN_DISTINCT} different ones, and {MIN_TOKEN_BITS} bits (length x log2 of "
                                 "the character classes used), e.g. from `openssl rand -hex 16`")
    return token


def station_token(token: str | None) -> str:
    """The token the station requires: the given one (checked), else a new random one."""
    return secrets.token_urlsafe(32) if token is None else check_token(token)


def url_host(host: str) -> str:
    """``host`` as it stands in a URL (an IPv6 address in brackets), lower case."""
    host = host.lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def station_url(host: str, port: int, token: str) -> str:
    return f"http://{url_host(host)}:{port}/?{TOKEN_PARAMETER}={urllib.parse.quote(token, safe='')}"


def parse_origin(origin: str) -> str:
    """A ``--origin`` as ``scheme://host[:port]`` (lower case); a one-line error for anything else."""
    parts = urllib.parse.urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ConfidenceSegError(f"--origin must look like https://qc.example.org[:PORT], got {origin!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def folder_path(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` resolved (``..`` and symlinks followed) when it stays inside ``folder``, else None."""
    root = folder.resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    return path if path.is_relative_to(root) else None


class Throttle:
    """Wrong tokens per address: after ``limit`` different wrong tokens within ``window_s`` seconds, every
    request from that address gets 429 for ``lockout_s`` seconds (the same wrong token again, e.g. a stale
    cookie, counts once)."""

    def __init__(self, limit: int = 5, window_s: float = 10.0, lockout_s: float = 10.0, clock=time.monotonic):
        self.limit, self.window_s, self.lockout_s, self.clock = limit, window_s, lockout_s, clock
        self.wrong: dict[str, dict[str, float]] = {}
        self.locked: dict[str, float] = {}

    def seconds_locked(self, address: str) -> float:
        """Seconds left of ``address``'s lockout (0 when none)."""
        left = self.locked.get(address, 0.0) - self.clock()
        if left <= 0:
            self.locked.pop(address, None)
        return max(left, 0.0)

    def record_wrong(self, address: str, guess: str) -> None:
        now = self.clock()
        if len(self.wrong) > 10_000:  # forget idle addresses
            self.wrong = {a: g for a, g in self.wrong.items() if max(g.values()) > now - self.window_s}
        recent = {g: t for g, t in self.wrong.get(address, {}).items() if t > now - self.window_s}
        recent[hashlib.sha256(guess.encode()).hexdigest()] = now
        self.wrong[address] = recent
        if len(recent) >= self.limit:
            self.locked[address] = now + self.lockout_s
            del self.wrong[address]


@dataclass
class Access:
    """One station's rules: its token, the host names it answers to, extra origins, the wslink secret."""

    token: str
    names: tuple[str, ...]
    origins: tuple[str, ...] = ()
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    throttle: Throttle = field(default_factory=Throttle)

    @classmethod
    def for_host(cls, bound: str, shown: str, token: str, origins=()) -> Access:
        """The rules of a station bound to ``bound`` and printed as ``shown``: loopback names too where
        it listens on loopback (a loopback or wildcard address)."""
        names = [url_host(shown)]
        if is_loopback(bound) or is_wildcard(bound):
            names += LOOPBACK_NAMES
        return cls(token, tuple(dict.fromkeys(names)), tuple(parse_origin(o) for o in origins))

    def cookie_value(self) -> str:
        """The cookie's value: derived from the token (the token itself is never stored in the browser)."""
        return hmac.new(self.token.encode(), b"confidenceseg station cookie", hashlib.sha256).hexdigest()

    def hosts(self, port: int) -> set[str]:
        return {f"{name}:{port}" for name in self.names} | {o.split("://", 1)[1] for o in self.origins}

    def allowed_origins(self, port: int) -> set[str]:
        return {f"http://{name}:{port}" for name in self.names} | set(self.origins)

    def refusal(self, request, port: int) -> tuple[int, str] | None:
        """(status, reason) when ``request`` may not pass, else None."""
        if request.headers.get("Host", "").lower() not in self.hosts(port):
            return 403, "403: this review station answers only to its own address (Host)\n"
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower().rstrip("/") not in self.allowed_origins(port):
            return 403, "403: requests from other sites are refused (Origin)\n"
        address = request.remote or ""
        if self.throttle.seconds_locked(address):
            return 429, "429: too many wrong tokens from this address; wait a few seconds\n"
        given = request.query.get(TOKEN_PARAMETER)
        cookie = request.cookies.get(f"{TOKEN_COOKIE}_{port}")
        if given is not None:
            right = hmac.compare_digest(given.encode(), self.token.encode())
        else:
            right = cookie is not None and hmac.compare_digest(cookie.encode(), self.cookie_value().encode())
        if right:
            return None
        if given is not None or cookie is not None:
            self.throttle.record_wrong(address, given if given is not None else cookie)
        return 403, "403: this review station needs its token (?token=...)\n"


def _port(request) -> int:
    """The local port the request came in on (the station's port)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else 0


def guard(access: Access):
    """An aiohttp middleware applying ``access`` to every request (see the module's description)."""
    from aiohttp import web

    @web.middleware
    async def check(request, handler):
        port = _port(request)
        refused = access.refusal(request, port)
        if refused is not None:
            status, text = refused
            headers = {"Retry-After": str(math.ceil(access.throttle.lockout_s))} if status == 429 else {}
            return web.Response(status=status, text=text, headers=headers)
        if request.method == "GET" and request.path in ("/", "/index.html") and \
                SECRET_PARAMETER not in request.query:
            query = {k: v for k, v in request.query.items() if k != TOKEN_PARAMETER}
            query[SECRET_PARAMETER] = access.secret
            response = web.Response(status=302, headers={"Location": "index.html?" + urllib.parse.urlencode(query)})
        else:
            response = await handler(request)
        if TOKEN_PARAMETER in request.query and isinstance(response, web.StreamResponse) and not response.prepared:
            response.set_cookie(f"{TOKEN_COOKIE}_{port}", access.cookie_value(), httponly=True, samesite="Strict",
                                path="/")
        return response

    return check


def files_route(folder: Path):
    """The aiohttp route serving ``/files/<path>`` from inside ``folder`` (403 outside, 404 missing)."""
    from aiohttp import web

    async def serve(request):
        path = folder_path(folder, request.match_info["path"])
        if path is None:
            return web.Response(status=403, text="403: outside the review folder\n")
        if not path.is_file():
            return web.Response(status=404, text="404: no such file\n")
        return web.FileResponse(path)

    return web.get(FILES_ROUTE + "{path:.*}", serve)


def secure_server(wslink_server, folder: Path, access: Access) -> None:
    """Add the files route and the checks of ``access`` to the station's aiohttp application (called by
    trame's ``on_server_bind``, before the server starts)."""
    app = wslink_server.app
    app.middlewares.append(guard(access))
    app.add_routes([files_route(folder)])
