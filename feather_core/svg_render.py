"""Drawing an SVG to PNG, in a job process. Run by ``feather_core.svg``.

Fetches nothing: every external reference (file, http, another SVG, a CSS
@import, a font) is replaced by an empty stand-in; only ``data:`` URIs embedded
in the document are read. As a second wall, job processes cannot open a socket.
"""

from __future__ import annotations

from typing import Any

# What an external reference becomes: an empty drawing, as cairosvg's own safe mode does.
EMPTY_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'


def refuse_external(url: str, resource_type: str | None = None) -> Any:
    """cairosvg URL fetcher that reads inline ``data:`` URIs and nothing else."""
    if url.startswith("data:"):
        from cairosvg.url import fetch

        return fetch(url, resource_type)
    return EMPTY_SVG


def render_png(svg: bytes, width: int, height: int) -> bytes:
    """The PNG of ``svg`` drawn at ``width`` × ``height``; must run in a job process."""
    from cairosvg.surface import PNGSurface

    # svg2png() does not pass url_fetcher through; Surface.convert hands it to the parser.
    png: bytes = PNGSurface.convert(
        bytestring=svg, output_width=width, output_height=height,
        url_fetcher=refuse_external, unsafe=False,
    )
    return png
