"""Who may reach a review station and what they may fetch: a token, and files of the review folder only.

The station binds 127.0.0.1 by default. Any other host needs a token: the one given, else one
generated here and printed in the station's URL. With a token every HTTP request, the page's
websocket included, must carry it, either as ``?token=...`` (the first request: the answer sets an
HttpOnly cookie for the rest) or in that cookie; anything else gets 403. ``/files/<path>`` serves
files inside the review folder only: paths are resolved (``..`` and symlinks included) and
anything that lands outside the folder gets 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from pathlib import Path

from ..contract import ConfidenceSegError

TOKEN_PARAMETER = "token"
TOKEN_COOKIE = "confidenceseg_station"
#: URL prefix of the review folder's files.
FILES_ROUTE = "/files/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def station_token(host: str, token: str | None) -> str | None:
    """The token the station requires: the given one, a new random one for a non-loopback host, else None."""
    if token is not None and len(token) < 16:
        raise ConfidenceSegError("--token must have at least 16 characters")
    if token is None and not is_loopback(host):
        return secrets.token_urlsafe(24)
    return token


def folder_path(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` resolved (``..`` and symlinks followed) when it stays inside ``folder``, else None."""
    root = folder.resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    return path if path.is_relative_to(root) else None


def token_middleware(token: str):
    """An aiohttp middleware that answers 403 to every request without ``token``."""
    from aiohttp import web

    @web.middleware
    async def require_token(request, handler):
        given = request.query.get(TOKEN_PARAMETER) or request.cookies.get(TOKEN_COOKIE) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.Response(status=403, text="403: this review station needs its token (?token=...)\n")
        response = await handler(request)
        if request.query.get(TOKEN_PARAMETER) and isinstance(response, web.StreamResponse) and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response

    return require_token


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


def secure_server(wslink_server, folder: Path, token: str | None) -> None:
    """Add the files route and, with a token, the token check to the station's aiohttp application
    (called by trame's ``on_server_bind``, before the server starts)."""
    app = wslink_server.app
    if token is not None:
        app.middlewares.append(token_middleware(token))
    app.add_routes([files_route(folder)])
