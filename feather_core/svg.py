"""SVG input: checked as XML in-process, rendered to PNG in a child process.

The XML is parsed with defusedxml first (no entities, so no XXE and no billion
laughs) and its canvas size is read and capped before anything is drawn. Drawing
happens in a job process (``feather_core.runner``) with a memory ceiling and a
deadline, because a hostile SVG (a ``<use>`` amplification bomb) can make cairo run
for minutes and a thread cannot be stopped; a process can.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeTree
from defusedxml.common import DefusedXmlException

from feather_core.deadline import Deadline
from feather_core.errors import InvalidImage, ProcessingFailed, ProcessingTimeout, TooManyPixels
from feather_core.options import Limits

_SVG_TAG = "{http://www.w3.org/2000/svg}svg"
_DEFAULT_SIZE = (300.0, 150.0)  # what browsers use for an SVG with no size at all
_UNITS = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "mm": 96 / 25.4,
          "cm": 96 / 2.54, "in": 96.0, "em": 16.0, "ex": 8.0}
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z%]*)\s*$")
_RENDER_TIMEOUT = 20.0
_MEMORY_FLOOR = 512 * 1024 * 1024
# Elements drawn once every <use> and url(#...) reference is expanded. cairosvg draws
# some tens of thousands a second; a real drawing rarely needs more than this, while
# a <use> bomb asks for billions from a few kilobytes.
MAX_DRAWN_ELEMENTS = 250_000
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_LOCAL_URL = re.compile(r"url\(\s*['\"]?#([^'\")\s]+)")


def _length(value: str | None) -> float | None:
    if not value:
        return None
    match = _LENGTH.match(value)
    if not match or match.group(2) == "%" or match.group(2) not in _UNITS:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


def _parse(data: bytes) -> Element:
    try:
        root: Element = SafeTree.fromstring(data, forbid_dtd=False, forbid_entities=True,
                                            forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidImage(
            "SVG with entity declarations or external references is refused") from exc
    except Exception as exc:
        raise InvalidImage("The SVG is not well-formed XML") from exc
    if root.tag not in (_SVG_TAG, "svg"):
        raise InvalidImage("The XML document is not an SVG image")
    return root


def drawn_elements(root: Element, cap: int = MAX_DRAWN_ELEMENTS) -> int:
    """How many elements drawing ``root`` visits, ``<use>`` and ``url(#id)`` expanded.

    Counting stops past ``cap``. Raises ``InvalidImage`` for a reference cycle or
    a count over ``cap`` (the ``<use>`` amplification bomb).
    """
    by_id = {el.get("id"): el for el in root.iter() if el.get("id")}
    memo: dict[int, int] = {}
    visiting: set[int] = set()

    def references(el: Element) -> list[Element]:
        found = []
        href = el.get("href") or el.get(_XLINK_HREF) or ""
        if el.tag.rsplit("}", 1)[-1] == "use" and href.startswith("#"):
            found.append(href[1:])
        for value in el.attrib.values():
            if "url(" in value:
                found += _LOCAL_URL.findall(value)
        return [by_id[i] for i in found if i in by_id]

    def cost(el: Element) -> int:
        key = id(el)
        if key in memo:
            return memo[key]
        if key in visiting:
            raise InvalidImage("The SVG refers to itself in a loop")
        visiting.add(key)
        total = 1
        for child in [*el, *references(el)]:
            total += cost(child)
            if total > cap:
                break
        visiting.discard(key)
        memo[key] = total
        return total

    try:
        total = cost(root)
    except RecursionError as exc:
        raise InvalidImage("The SVG is nested too deeply to draw") from exc
    if total > cap:
        raise InvalidImage(f"The SVG would draw more than {cap:,} elements "
                           "(too many <use> repetitions)")
    return total


def canvas_size(data: bytes) -> tuple[int, int]:
    """The pixel size an SVG asks for, from width/height or else its viewBox.

    Raises ``InvalidImage`` for XML that is malformed, declares entities, or is not SVG.
    """
    return _canvas_size(_parse(data))


def _canvas_size(root: Element) -> tuple[int, int]:
    width = _length(root.get("width"))
    height = _length(root.get("height"))
    box = _view_box(root.get("viewBox"))
    if width is None and height is None:
        width, height = box or _DEFAULT_SIZE
    elif width is None:
        assert height is not None
        width = height * (box[0] / box[1]) if box else _DEFAULT_SIZE[0]
    elif height is None:
        height = width * (box[1] / box[0]) if box else _DEFAULT_SIZE[1]
    if not (math.isfinite(width) and math.isfinite(height)) or width <= 0 or height <= 0:
        raise InvalidImage("The SVG has no drawable size")
    return max(1, round(width)), max(1, round(height))


def _view_box(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    parts = re.split(r"[\s,]+", value.strip())
    try:
        w, h = float(parts[2]), float(parts[3])
    except (IndexError, ValueError):
        return None
    if not (math.isfinite(w) and math.isfinite(h)) or w <= 0 or h <= 0:
        return None
    return w, h


def rasterize(data: bytes, limits: Limits, deadline: Deadline | None = None) -> bytes:
    """Render an SVG document to PNG bytes at its own size, within ``limits``.

    In a job process (``feather_core.runner``) the drawing happens right here: the
    process is already killed at its deadline and held under its memory ceiling. Called
    from anywhere else, the drawing goes to a job process of its own, so a hostile
    drawing can never hold or exhaust the caller.
    """
    from feather_core import runner
    from feather_core.svg_render import render_png

    root = _parse(data)
    width, height = _canvas_size(root)
    if width * height > limits.max_pixels:
        raise TooManyPixels(f"The SVG canvas has more than {limits.max_pixels:,} pixels")
    drawn_elements(root)
    if runner.in_job_process():
        return _checked(_render_here(render_png, data, width, height))
    timeout = _RENDER_TIMEOUT
    remaining = deadline.remaining() if deadline else None
    if remaining is not None:
        timeout = min(timeout, remaining)
    if timeout <= 0:
        raise ProcessingTimeout("Processing took longer than the time allowed")
    # cairo keeps a few ARGB copies of the canvas; the floor covers Python and cairosvg.
    memory = _MEMORY_FLOOR + width * height * 16
    job = runner.isolated(memory).submit_call(render_png, data, width, height,
                                              expires_at=time.monotonic() + timeout)
    try:
        return _checked(job.result())
    except ProcessingTimeout as exc:
        raise ProcessingTimeout("Rendering the SVG took longer than the time allowed") from exc
    except (ProcessingFailed, TooManyPixels) as exc:
        raise InvalidImage("The SVG could not be rendered") from exc


def _render_here(render: Callable[[bytes, int, int], bytes], data: bytes, width: int,
                 height: int) -> bytes:
    try:
        return render(data, width, height)
    except MemoryError:
        raise TooManyPixels("The SVG needs more memory than a job may use") from None
    except Exception as exc:
        raise InvalidImage("The SVG could not be rendered") from exc


def _checked(png: object) -> bytes:
    if not isinstance(png, bytes) or not png.startswith(b"\x89PNG"):
        raise InvalidImage("The SVG could not be rendered")
    return png
