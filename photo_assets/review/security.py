"""What keeps the review server to its user. It writes the user's labels, and any web site the user visits can send
requests to localhost, so:
- it binds 127.0.0.1 unless told otherwise;
- a request whose Host is not the bound address or localhost (with the port) gets 400 (DNS rebinding);
- a state-changing request needs the per-process token the pages embed (header X-Review-Token) and an Origin (or
  Referer) equal to the page's own origin, else 403 and nothing changes (CSRF).
"""

from __future__ import annotations

import ipaddress
import secrets

from starlette.responses import JSONResponse

TOKEN_HEADER = "x-review-token"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers this server answers: the bound address and localhost, with the port. None (any) when bound
    to every interface, where the machine's names are not known here (the token and Origin checks still apply)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return {f"{bound}:{port}", f"localhost:{port}"} | ({f"127.0.0.1:{port}"} if is_loopback(host) else set())


class Guard:
    """ASGI middleware: Host check on every request; token and same-origin check on state-changing ones."""

    def __init__(self, app, hosts: set[str] | None, token: str):
        self.app, self.hosts, self.token = app, hosts, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and host.lower() not in self.hosts:
            response = JSONResponse({"error": f"unexpected Host header {host!r}"}, status_code=400)
            return await response(scope, receive, send)
        if scope["method"] in STATE_CHANGING:
            refusal = self._refusal(headers, host)
            if refusal:
                return await JSONResponse({"error": f"forbidden: {refusal}"}, status_code=403)(scope, receive, send)
        return await self.app(scope, receive, send)

    def _refusal(self, headers: dict[str, str], host: str) -> str | None:
        origin = f"http://{host}"
        sent_origin = headers.get("origin")
        referer = headers.get("referer", "")
        same_origin = sent_origin == origin if sent_origin else referer.startswith(origin + "/")
        if not secrets.compare_digest(headers.get(TOKEN_HEADER, ""), self.token):
            return "missing or wrong token"
        return None if same_origin else "request not from this page's origin"
