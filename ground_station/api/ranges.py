"""Serving stored bytes (an alert's MP4 clip) with HTTP Range (RFC 9110 §14), so a `<video>` element can
start playing before it has everything and seek anywhere.

Starlette's FileResponse honours Range for files on disk; clips live in the database, so this is the
same for a bytes object: one range `bytes=a-b`, `bytes=a-` or `bytes=-n` gets 206 with Content-Range;
a range past the end gets 416; anything else (several ranges, another unit, bad syntax, an If-Range that
no longer matches) gets the whole body with 200, which the RFC allows and every player handles.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive; None: serve everything; raises Unsatisfiable for 416."""
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:  # a suffix: the last n bytes
        if not last:
            return None
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise Unsatisfiable
    return start, min(int(last), size - 1) if last else size - 1


def bytes_response(request: Request, data: bytes, media_type: str, etag: str, headers: dict[str, str]) -> Response:
    """`data` whole (200) or the one range the request asks for (206), with Accept-Ranges and an ETag."""
    size = len(data)
    common = {"Accept-Ranges": "bytes", "ETag": etag, **headers}
    header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if header is None or (if_range is not None and if_range != etag):
        return Response(data, 200, media_type=media_type, headers=common)
    try:
        span = parse_range(header, size)
    except Unsatisfiable:
        return Response(b"", 416, headers={**common, "Content-Range": f"bytes */{size}"})
    if span is None:
        return Response(data, 200, media_type=media_type, headers=common)
    first, last = span
    return Response(data[first : last + 1], 206, media_type=media_type,
                    headers={**common, "Content-Range": f"bytes {first}-{last}/{size}"})  # fmt: skip
