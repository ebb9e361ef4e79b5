"""Child-process entry point: SVG on stdin, PNG on stdout. Run by ``feather_core.svg``.

Fetches nothing: every external reference (file, http, another SVG, a CSS
@import) is refused; only ``data:`` URIs embedded in the document are read.
"""

from __future__ import annotations

import sys
from typing import Any


def refuse_external(url: str, resource_type: str | None = None) -> dict[str, Any]:
    """cairosvg URL fetcher that only reads inline ``data:`` URIs."""
    if url.startswith("data:"):
        from cairosvg.url import fetch

        result: dict[str, Any] = fetch(url, resource_type)
        return result
    raise ValueError("external references are not loaded")


def main() -> int:
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
