"""Credentials never reach a record: the one rule for URIs that name a store or a server."""

from __future__ import annotations

import re

# scheme://userinfo@ : the user-info part of any URI in a text
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s'\"]+)@")  # to the last @


def redact(text: str) -> str:
    """`text` (a URI, a message, a traceback) as records hold it (run.json, MLflow params,
    provenance, logs, error messages): in every `scheme://user:password@host` the password
    goes, and a user-info part without a colon (`https://token@host`) goes whole, since it may
    be the token itself."""

    def keep_user(match: re.Match) -> str:
        scheme, userinfo = match[1], match[2]
        return scheme + (userinfo.split(":", 1)[0] + "@" if ":" in userinfo else "")

    return _USERINFO.sub(keep_user, text)
