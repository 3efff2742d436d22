"""Reading a scoring endpoint's answer: never a redirect, never more than a size cap.

A 307 to another host made the client re-POST the whole capture (13.4 MB) and the key
there; a 1.5 GB answer was read whole (3.2 GB of memory) before being rejected. The
client sends with ``allow_redirects=False, stream=True`` and reads the answer here.
"""
from __future__ import annotations

from collections.abc import Callable

import requests

from core.errors import escape_controls

# The largest answer read: a full-sensor map with probabilities and RGB is ~3 MB; a broken or
# hostile endpoint answering gigabytes is cut off here instead of filling the memory.
MAX_RESPONSE_BYTES = 64_000_000


def read_capped(
    response: requests.Response, url: str, limit: int, error: Callable[..., Exception]
) -> requests.Response:
    """``response`` with its body read, at most ``limit`` bytes.

    ``error(status, message, url=url)`` is raised for a redirect (3xx: never followed) or an
    answer over ``limit`` (declared in ``Content-Length`` or found while reading). The
    connection is released either way.
    """
    try:
        status = response.status_code
        if 300 <= status < 400:
            location = escape_controls(response.headers.get("Location", "") or "(no Location)")[:120]
            raise error(
                status, f"{url}: the endpoint redirects (HTTP {status} to {location}); scoring requests are never "
                "redirected: configure the endpoint's final URL", url=url,
            )
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise error(status, f"{url}: answer of {int(declared)} bytes is over the {limit} byte limit", url=url)
        chunks, total = [], 0
        for chunk in response.iter_content(1 << 20):
            total += len(chunk)
            if total > limit:
                raise error(status, f"{url}: answer over the {limit} byte limit; stopped reading", url=url)
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what requests itself stores when it reads the body
    finally:
        response.close()
    return response
