"""openpi's optional API key: `Authorization: Api-Key <key>` on the websocket handshake."""

from __future__ import annotations

import hmac
from pathlib import Path

HEADER = "Authorization"


def header_value(key: str) -> str:
    return f"Api-Key {key}"


def read_api_key(path: str | Path) -> str:
    """The key in `path` (surrounding whitespace stripped); ValueError naming the file if empty or absent."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"API key file not found: {path}")
    key = path.read_text().strip()
    if not key:
        raise ValueError(f"API key file {path} is empty")
    return key


def key_matches(given: str, key: str) -> bool:
    """Constant-time comparison of a received header value with the expected key."""
    return hmac.compare_digest(given.encode(), header_value(key).encode())
