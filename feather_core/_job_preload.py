"""What the fork server of job processes loads once, before any limit applies.

Every job process is forked from a server that imported this module: codecs and
Pillow's plugins are loaded already and shared, so a job starts in milliseconds. It
also keeps a job's memory ceiling from breaking a later job: Pillow imports its format
plugins on first use and skips one whose import fails, so a plugin first imported under
a job that hit the ceiling would be missing for every job after it.
"""

from __future__ import annotations

import contextlib

from PIL import Image

from feather_core import compress, decode, runner, svg_render  # noqa: F401 - loaded for the jobs

Image.init()
decode.register_heif()
# Without libcairo, SVG inputs answer that they cannot be drawn.
with contextlib.suppress(ImportError, OSError):
    import cairosvg.surface  # noqa: F401 - SVG drawing, loaded once
