"""Child-process entry point: SVG on stdin, PNG on stdout. Run by ``feather_core.svg``.

Fetches nothing: every external reference (file, http, another SVG, a CSS
@import, a font) is replaced by an empty stand-in; only ``data:`` URIs embedded
in the document are read. As a second wall, the process cannot open a socket.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

# What an external reference becomes: an empty drawing, as cairosvg's own safe mode does.
EMPTY_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'


def refuse_external(url: str, resource_type: str | None = None) -> Any:
    """cairosvg URL fetcher that reads inline ``data:`` URIs and nothing else."""
    if url.startswith("data:"):
        from cairosvg.url import fetch

        return fetch(url, resource_type)
    return EMPTY_SVG


class _NoSocket(socket.socket):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("network access is disabled while rendering SVG")


def _forbid_network() -> None:
    socket.socket = _NoSocket  # type: ignore[misc]
    socket.create_connection = _NoSocket


def main() -> int:
    _forbid_network()
    from cairosvg.surface import PNGSurface

    width, height = int(sys.argv[1]), int(sys.argv[2])
    svg = sys.stdin.buffer.read()
    # svg2png() does not pass url_fetcher through; Surface.convert hands it to the parser.
    png = PNGSurface.convert(
        bytestring=svg, output_width=width, output_height=height,
        url_fetcher=refuse_external, unsafe=False,
    )
    sys.stdout.buffer.write(png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
