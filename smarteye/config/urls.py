"""URLs as operators write them: check the parts a socket will need (host, numeric port) when the config is read,
and hide credentials (user info, `?password=`/`?token=`…) wherever a URL is logged or published.

One place for both so that every consumer (sources, uplink, status messages, logs) redacts the same way, and the
redaction never raises: a URL that urllib cannot parse is still printed without its secrets.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

REDACTED = "***"
# Query parameters whose value is a secret (compared lower-case, also as a suffix: `db_password`, `x-api-key`).
SECRET_PARAMS = ("password", "passwd", "pass", "pwd", "token", "secret", "key", "apikey", "auth", "signature", "sig",
                 "credential", "credentials", "session", "jwt", "code", "passphrase")  # fmt: skip
_USERINFO = re.compile(r"(?<=//)[^/?#]+@")  # greedy: up to the authority's last '@' (a password may hold '@')
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")


def _secret_param(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return any(lowered == word or lowered.endswith("_" + word) for word in SECRET_PARAMS)


def redact_url(url: str) -> str:
    """The URL with user info replaced by `***@` and the values of secret query parameters by `***`.

    Works on the text (no parse that could fail on a bad port or bracket), so it is safe on any string;
    a string without `//` and `?` (a file path, a camera index) comes back unchanged.
    """
    text = _USERINFO.sub(REDACTED + "@", url, count=1)
    return _QUERY_PARAM.sub(
        lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}" if _secret_param(m.group(2)) else m.group(0), text
    )


def redact_text(text: str, url: str) -> str:
    """`text` (an error message, a log line) with `url` and any URL-like user info in it redacted."""
    if url and url in text:
        text = text.replace(url, redact_url(url))
    return re.sub(r"(\w+://)[^/\s?#]+@", r"\1" + REDACTED + "@", text)


def check_network_url(url: str, *, host_required: bool = True, port_required: bool = False) -> str:
    """Raise ValueError (naming the problem, never the credentials) unless `url` has a host (if required) and,
    if it names one, a numeric port in 1..65535."""
    safe = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as error:  # e.g. an unbalanced IPv6 bracket
        raise ValueError(f"{safe!r} is not a valid URL: {error}") from None
    if host_required and not parts.hostname:
        raise ValueError(f"{safe!r} has no host")
    host_port = parts.netloc.rpartition("@")[2]
    port_text = host_port.rpartition("]")[2] if host_port.startswith("[") else host_port
    port_text = port_text.partition(":")[2] if ":" in port_text else None
    if port_text is None or port_text == "":
        if port_required:
            raise ValueError(f"{safe!r} has no port")
        return url
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{safe!r}: port {port_text!r} is not a number in 1..65535")
    return url
