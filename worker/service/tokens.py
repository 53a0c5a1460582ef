"""Bearer tokens of the HTTP ingress: several at once (rotation), compared in constant time, never logged.

Where they come from: an environment variable and/or a file (a mounted Kubernetes secret). The file is
read again when its modification time or size changes, so rotating a token is: add the new one, move
callers over, remove the old one, with no restart. A token is held as a ``Secret`` (its ``repr`` is
masked).

The file is what the operator says now, including when it is wrong:

- an entry shorter than ``MIN_TOKEN_CHARS`` is ignored (a typo must not lock every caller out, nor
  become an easy-to-guess key), logged once per change of the file, without the entry;
- a deleted or empty file revokes its tokens (logged once): removing the secret is how an operator
  revokes, so keeping the last tokens would keep a revoked key working. The environment's tokens stay;
- a file that exists but cannot be read (permissions) keeps the last tokens read, logged once: that is
  a deployment fault, not an instruction.

The environment cannot change while the process runs, so a short token there is a TokenError at start.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from pathlib import Path

from worker.privacy.secret import Secret

log = logging.getLogger("segment_export.ingress")

_SPLIT = re.compile(r"[\s,]+")
MIN_TOKEN_CHARS = 16
_MISSING = (-1, -1)


class TokenError(ValueError):
    """No usable token, or one too short to be a secret; the message names where it came from and the fix."""


class Tokens:
    """The accepted tokens; ``accepts(authorization_header)`` says whether a request may publish."""

    def __init__(self, env: str | None, file: str | None) -> None:
        self.env = env
        self.file = Path(file) if file else None
        where = f"environment variable {env}"
        self._env_tokens, short = _parse(os.environ.get(env, "") if env else "")
        if short:
            raise TokenError(f"the {where} holds a token shorter than {MIN_TOKEN_CHARS} characters; use long "
                             "random tokens (e.g. `openssl rand -hex 32`)")
        self._file_stamp: tuple[int, int] | None = None
        self._file_tokens: tuple[Secret, ...] = ()
        if not self._read_file() and not self._env_tokens:
            where = " or ".join(x for x in (f"the environment variable {env}" if env else "",
                                            f"the file {file}" if file else "") if x) or "nowhere"
            raise TokenError(f"the ingress has no bearer token: set {where} ([ingress] tokens_env / tokens_file) "
                             f"to one or more tokens of at least {MIN_TOKEN_CHARS} characters")

    def _read_file(self) -> tuple[Secret, ...]:
        """The file's tokens, read again only when the file changed (see the module docstring)."""
        if self.file is None:
            return ()
        try:
            st = self.file.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._file_stamp:
                return self._file_tokens
            tokens, short = _parse(self.file.read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            if self._file_stamp != _MISSING:
                if self._file_tokens:
                    log.warning("ingress tokens file %s is gone: its tokens are revoked", self.file)
                self._file_stamp, self._file_tokens = _MISSING, ()
            return ()
        except OSError as exc:
            if self._file_stamp is not None:
                log.warning("ingress tokens file %s cannot be read (%s): the tokens read before stay",
                            self.file, type(exc).__name__)
                self._file_stamp = None  # retried at the next request, logged again only after a success
            return self._file_tokens
        if short:
            log.warning("ingress tokens file %s: %d entr%s shorter than %d characters ignored (use long random "
                        "tokens, e.g. `openssl rand -hex 32`)", self.file, short, "y" if short == 1 else "ies",
                        MIN_TOKEN_CHARS)
        if not tokens and self._file_tokens:
            log.warning("ingress tokens file %s holds no usable token: its tokens are revoked", self.file)
        self._file_stamp, self._file_tokens = stamp, tokens
        return tokens

    def accepts(self, authorization: str | None) -> bool:
        """``Authorization: Bearer <token>`` holds one of the tokens (every token is compared: no early exit).

        A header that is not UTF-8 (aiohttp hands its bytes over as surrogate escapes) holds no token.
        """
        if not authorization:
            return False
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        try:
            offered = given.strip().encode("utf-8")
        except UnicodeEncodeError:
            return False
        found = False
        for token in (*self._env_tokens, *self._read_file()):
            found |= hmac.compare_digest(offered, token.reveal().encode())
        return found


def _parse(text: str) -> tuple[tuple[Secret, ...], int]:
    """The tokens of ``text`` and how many entries were too short to be one."""
    entries = [t for t in _SPLIT.split(text.strip()) if t]
    tokens = tuple(Secret(t) for t in entries if len(t) >= MIN_TOKEN_CHARS)
    return tokens, len(entries) - len(tokens)
