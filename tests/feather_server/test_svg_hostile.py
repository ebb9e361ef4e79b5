"""Hostile SVG: nothing is fetched, entities are refused, bombs stop in bounded time."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image

from feather_core import svg
from feather_core.deadline import Deadline
from feather_core.errors import InvalidImage, ProcessingTimeout, TooManyPixels
from feather_core.options import Limits
from tests import hostile
from tests.helpers import open_image

SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


class Listener:
    """A TCP listener on 127.0.0.1 that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture(scope="module")
def red_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("svg") / "red.png"
    Image.new("RGB", (40, 40), (255, 0, 0)).save(path)
    return path


def _external_cases(url: str, red: Path) -> dict[str, str]:
    rect = '<rect width="40" height="40" fill="#00f"/>'
    return {
        "image-http": f'<image href="{url}/a.png" xlink:href="{url}/a.png" '
                      'width="40" height="40"/>',
        "image-file": f'<image xlink:href="file://{red}" width="40" height="40"/>',
        "image-relative": f'<image xlink:href="{red.name}" width="40" height="40"/>',
        "css-import": f'<style>@import url("{url}/a.css");</style>{rect}',
        "css-font": f'<style>@font-face {{font-family: x; src: url({url}/f.ttf)}}</style>'
                    '<text y="20" font-family="x">hi</text>',
        "use-http": f'<use xlink:href="{url}/b.svg#a"/>{rect}',
        "use-file": f'<use xlink:href="file://{red.parent}/other.svg#a"/>{rect}',
        "fill-url": f'<rect width="40" height="40" fill="url({url}/g.svg#g)"/>',
        "feimage": f'<filter id="f"><feImage xlink:href="{url}/a.png"/></filter>'
                   '<rect width="40" height="40" filter="url(#f)"/>',
        "pi-stylesheet": rect,
    }


def _document(name: str, body: str, url: str) -> bytes:
    head = f'<?xml-stylesheet href="{url}/s.css" type="text/css"?>' \
        if name == "pi-stylesheet" else ""
    return f'{head}<svg {SVG_NS} width="40" height="40">{body}</svg>'.encode()


def test_no_external_reference_is_fetched(client: FlaskClient, listener: Listener,
                                          red_png: Path) -> None:
    url = f"http://127.0.0.1:{listener.port}"
    for name, body in _external_cases(url, red_png).items():
        data = _document(name, body, url)
        response = client.post("/api/compress", data={"file": (io.BytesIO(data), "x.svg"),
                                                      "outputFormat": "png"})
        assert response.status_code in (200, 422), (name, response.get_json())
        if response.status_code == 200:
            out = open_image(response.data).convert("RGBA")
            # The red file on disk must never show up in the drawing.
            assert out.getpixel((20, 20))[:3] != (255, 0, 0), name
    time.sleep(0.3)
    assert listener.connections == 0


def test_the_listener_would_have_seen_a_fetch(listener: Listener) -> None:
    # Proves the zero above means something: a plain connection is counted.
    before = listener.connections
    socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    deadline = time.monotonic() + 5
    while listener.connections == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.connections == before + 1


def test_data_uri_images_are_drawn(client: FlaskClient) -> None:
    import base64

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (0, 200, 0)).save(buffer, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    data = f'<svg {SVG_NS} width="40" height="40"><image xlink:href="{uri}" ' \
           'width="40" height="40"/></svg>'
    response = client.post("/api/compress", data={"file": (io.BytesIO(data.encode()), "d.svg"),
                                                  "outputFormat": "png"})
    assert response.status_code == 200
    r, g, b = open_image(response.data).convert("RGB").getpixel((20, 20))
    assert g > 150
    assert r < 60


@pytest.mark.parametrize("data", [
    hostile.billion_laughs(),
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><text>&x;</text></svg>',
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
], ids=["billion-laughs", "xxe-file", "xxe-parameter-entity"])
def test_entities_are_refused(client: FlaskClient, data: bytes) -> None:
    started = time.monotonic()
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), "e.svg")})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "INVALID_IMAGE"
    assert time.monotonic() - started < 10


def test_use_bomb_is_refused_before_rendering(client: FlaskClient) -> None:
    response = client.post("/api/compress", data={"file": (io.BytesIO(hostile.use_bomb()),
                                                            "bomb.svg")})
    assert response.status_code == 422
    assert "<use>" in response.get_json()["error"]["message"]


def test_use_cycle_is_refused() -> None:
    data = f'<svg {SVG_NS} width="9" height="9"><g id="a"><use xlink:href="#b"/></g>' \
           '<g id="b"><use xlink:href="#a"/></g></svg>'
    with pytest.raises(InvalidImage):
        svg.rasterize(data.encode(), Limits())


def test_drawn_elements_counts_use_expansion() -> None:
    data = hostile.use_bomb(levels=3, fanout=4)
    root = svg._parse(data)
    # 4^3 circles drawn through the final <use>, plus the defs themselves.
    assert svg.drawn_elements(root) > 4 ** 3
    with pytest.raises(InvalidImage):
        svg.drawn_elements(root, cap=50)


@pytest.mark.parametrize("size_attrs", ['width="30000" height="30000"',
                                        'viewBox="0 0 30000 30000"',
                                        'width="300in" height="300in"'])
def test_huge_canvas_is_refused_from_its_attributes(client: FlaskClient,
                                                    size_attrs: str) -> None:
    data = f'<svg {SVG_NS} {size_attrs}><rect width="5" height="5"/></svg>'.encode()
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), "big.svg")})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "TOO_MANY_PIXELS"


def test_canvas_size_reads_units_and_viewbox() -> None:
    assert svg.canvas_size(f'<svg {SVG_NS} width="1in" height="48"/>'.encode()) == (96, 48)
    assert svg.canvas_size(f'<svg {SVG_NS} viewBox="0 0 200 100" width="50"/>'.encode()) \
        == (50, 25)
    assert svg.canvas_size(f'<svg {SVG_NS}/>'.encode()) == (300, 150)
    with pytest.raises(InvalidImage):
        svg.canvas_size(f'<svg {SVG_NS} width="1e400" height="5"/>'.encode())


def test_render_that_overruns_the_deadline_is_killed() -> None:
    # 10,000 big translucent circles (far under the drawn-elements cap): seconds of cairo.
    defs = ['<circle id="l0" r="1500" cx="2000" cy="2000" fill="#08f" fill-opacity="0.01"/>']
    for i in range(1, 5):
        uses = "".join(f'<use xlink:href="#l{i - 1}" x="{j}"/>' for j in range(10))
        defs.append(f'<g id="l{i}">{uses}</g>')
    data = (f'<svg {SVG_NS} width="4000" '
            f'height="4000"><defs>{"".join(defs)}</defs><use xlink:href="#l4"/></svg>').encode()
    started = time.monotonic()
    with pytest.raises(ProcessingTimeout):
        svg.rasterize(data, Limits(timeout=0.5), Deadline(0.5))
    assert time.monotonic() - started < 3


def test_too_many_pixels_for_a_small_budget() -> None:
    with pytest.raises(TooManyPixels):
        svg.rasterize(f'<svg {SVG_NS} width="200" height="200"/>'.encode(),
                      Limits(max_pixels=1000))
