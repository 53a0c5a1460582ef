"""Bearer tokens of the HTTP ingress: several at once (rotation), compared in constant time, never logged.

Where they come from: an environment variable and/or a file (a mounted Kubernetes secret). The file is
read again when its modification time changes, so rotating a token is: add the new one, move callers
over, remove the old one, with no restart. A token is held as a ``Secret`` (its ``repr`` is masked).
"""

from __future__ import annotations

import hmac
import os
import re
from pathlib import Path

from worker.privacy.secret import Secret

_SPLIT = re.compile(r"[\s,]+")
MIN_TOKEN_CHARS = 16


class TokenError(ValueError):
    """No usable token, or one too short to be a secret; the message names where it came from and the fix."""


class Tokens:
    """The accepted tokens; ``accepts(authorization_header)`` says whether a request may publish."""

    def __init__(self, env: str | None, file: str | None) -> None:
        self.env = env
        self.file = Path(file) if file else None
        self._env_tokens = _parse(os.environ.get(env, "") if env else "", f"environment variable {env}")
        self._file_stamp: tuple[int, int] | None = None
        self._file_tokens: tuple[Secret, ...] = ()
        if not self._env_tokens and not self._read_file():
            where = " or ".join(x for x in (f"the environment variable {env}" if env else "",
                                            f"the file {file}" if file else "") if x) or "nowhere"
            raise TokenError(f"the ingress has no bearer token: set {where} ([ingress] tokens_env / tokens_file) "
                             f"to one or more tokens of at least {MIN_TOKEN_CHARS} characters")

    def _read_file(self) -> tuple[Secret, ...]:
        """The file's tokens, read again only when the file changed; the last good ones if it cannot be read."""
        if self.file is None:
            return ()
        try:
            st = self.file.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._file_stamp:
                self._file_tokens = _parse(self.file.read_text(), f"the file {self.file}")
                self._file_stamp = stamp
        except OSError:
            pass  # a secret being re-mounted: keep the tokens we had
        return self._file_tokens

    def accepts(self, authorization: str | None) -> bool:
        """``Authorization: Bearer <token>`` holds one of the tokens (every token is compared: no early exit)."""
        if not authorization:
            return False
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        offered = given.strip().encode()
        found = False
        for token in (*self._env_tokens, *self._read_file()):
            found |= hmac.compare_digest(offered, token.reveal().encode())
        return found


def _parse(text: str, where: str) -> tuple[Secret, ...]:
    tokens = [t for t in _SPLIT.split(text.strip()) if t]
    short = [t for t in tokens if len(t) < MIN_TOKEN_CHARS]
    if short:
        raise TokenError(f"{where} holds a token shorter than {MIN_TOKEN_CHARS} characters; use long random tokens "
                         "(e.g. `openssl rand -hex 32`)")
    return tuple(Secret(t) for t in tokens)
