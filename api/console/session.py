"""The console's sign-in: an API token exchanged once for a session cookie, and the CSRF token of that session.

- **Sign in.** `POST /console/login` takes a token (`streamdesk token …`, or the identity provider's, verified the
  same way as a Bearer header). Only `system_admin` and `iam_admin` may open the console.
- **The cookie** (`streamdesk_console`) is a JWT of its own: signed with a key derived from the api's JWT key
  (so a session cookie is never a valid Bearer token, nor the other way round), audience `streamdesk-console`,
  lifetime at most `CONSOLE_SESSION_S` and never past the token it came from. HttpOnly (no script reads it),
  SameSite=Strict (no other site's page sends it), Path=/console, Secure when the request came over https.
- **CSRF.** Every state-changing form carries `csrf`, an HMAC of the session id; a POST without the right one is
  refused (403) before anything runs. SameSite=Strict already keeps cross-site posts out; this is the second
  lock, for browsers and proxies that drop the attribute.
- **Sign out** revokes the session id in this process (until its expiry) and clears the cookie. The cookie also
  names the api process that issued it (`boot`): after a restart every earlier session is refused, so a
  revocation the restart forgot cannot bring a signed-out cookie back (people sign in again after a restart).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request

from api.security import declare
from pipeline.security import ALGORITHM, Principal, Role, TokenError, principal_from_claims, verify_token
from pipeline.settings import Settings

COOKIE = "streamdesk_console"
AUDIENCE = "streamdesk-console"
CONSOLE_ROLES = (Role.SYSTEM_ADMIN, Role.IAM_ADMIN)


class ConsoleRefusal(Exception):
    """A console request refused: 401 (sign in again) or 403; answered as an HTML page (api/console/routes.py)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    session_id: str
    expires_at: int
    csrf: str

    @property
    def scope(self) -> str | None:
        """The tenant this session reads: None (every tenant) for a system_admin, else its own."""
        return None if self.principal.has(Role.SYSTEM_ADMIN) else self.principal.tenant_id

    @property
    def tenant_label(self) -> str:
        return "every tenant" if self.scope is None else f"tenant {self.scope}"


_revoked: dict[str, int] = {}  # session id -> its expiry; a signed-out cookie stays refused until then
BOOT = secrets.token_hex(8)  # this api process: cookies of an earlier one (revocations it forgot) are refused


def _key(settings: Settings) -> str:
    return hmac.new(settings.jwt_key().encode(), b"streamdesk console session", hashlib.sha256).hexdigest()


def _csrf(settings: Settings, session_id: str) -> str:
    return hmac.new(_key(settings).encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def open_session(settings: Settings, token: str) -> tuple[str, Session]:
    """(cookie value, session) for a valid API token of a console role; ConsoleRefusal otherwise."""
    try:
        principal = verify_token(settings.jwt_key(), token.strip())
        token_exp = jwt.decode(token.strip(), options={"verify_signature": False}).get("exp")
    except (TokenError, jwt.PyJWTError) as exc:
        raise ConsoleRefusal(401, f"That token was not accepted: {exc}") from None
    if not principal.has(*CONSOLE_ROLES):
        raise ConsoleRefusal(403, "The console is for system_admin and iam_admin; this token has neither role.")
    now = int(time.time())
    expires = min(now + int(settings.console_session_s), int(token_exp) if isinstance(token_exp, int) else now)
    session_id = secrets.token_urlsafe(18)
    claims = {"sub": principal.user_id, "tenant": principal.tenant_id, "roles": sorted(principal.roles),
              "aud": AUDIENCE, "jti": session_id, "boot": BOOT, "iat": now, "exp": expires}
    cookie = jwt.encode(claims, _key(settings), algorithm=ALGORITHM)
    return cookie, Session(principal, session_id, expires, _csrf(settings, session_id))


def read_session(settings: Settings, cookie: str | None) -> Session:
    """The session a cookie proves, or ConsoleRefusal(401)."""
    if not cookie:
        raise ConsoleRefusal(401, "Sign in to open the console.")
    try:
        claims = jwt.decode(cookie, _key(settings), algorithms=[ALGORITHM], audience=AUDIENCE,
                            options={"require": ["sub", "exp", "jti", "aud"]})
        principal = principal_from_claims(claims)
    except jwt.ExpiredSignatureError:
        raise ConsoleRefusal(401, "Your session has ended; sign in again.") from None
    except (jwt.PyJWTError, TokenError):
        raise ConsoleRefusal(401, "That session is not valid; sign in again.") from None
    session_id = str(claims["jti"])
    if claims.get("boot") != BOOT:
        raise ConsoleRefusal(401, "The api restarted since you signed in; sign in again.")
    if session_id in _revoked:
        raise ConsoleRefusal(401, "You signed out; sign in again.")
    if not principal.has(*CONSOLE_ROLES):
        raise ConsoleRefusal(403, "The console is for system_admin and iam_admin.")
    return Session(principal, session_id, int(claims["exp"]), _csrf(settings, session_id))


def revoke(session: Session) -> None:
    now = time.time()
    for sid, exp in list(_revoked.items()):
        if exp < now:
            del _revoked[sid]
    _revoked[session.session_id] = session.expires_at


def check_csrf(session: Session, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(sent, session.csrf):
        raise ConsoleRefusal(403, "This form is out of date or did not come from the console; reload and retry.")


@declare("console: a signed-in session cookie of system_admin or iam_admin (401 page: sign in)")
def console_session(request: Request) -> Session:
    return read_session(request.app.state.settings, request.cookies.get(COOKIE))


ConsoleSession = Annotated[Session, Depends(console_session)]
