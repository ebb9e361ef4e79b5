"""The upload form at GET /, driven in a real headless Chromium against a real gunicorn.

Chromium is Debian's (`make browser-deps` installs it); Playwright's Python API drives
it. Every test records the requests the page makes and checks none leaves the origin.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.images import encode, photo
from tests.server import GunicornServer

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000  # a shared 2-core machine: generous, and never a timing assert
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (Debian's chromium package)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                          headless=True)
    yield chromium
    chromium.close()


class Visit:
    """A browser context on one server, recording every request the page makes."""

    def __init__(self, browser: Browser, origin: str, **context: object) -> None:
        self.origin = origin
        self.context: BrowserContext = browser.new_context(accept_downloads=True, **context)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.page: Page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append((r.method, r.url)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # File-chooser interception is switched on by the first listener, asynchronously:
        # switched on here, a key press that opens the chooser cannot outrun it.
        self.page.on("filechooser", lambda chooser: None)

    def open(self) -> Page:
        self.page.goto(self.origin + "/")
        self.page.wait_for_selector("html[data-ready='true']")
        return self.page

    def add_files(self, *paths: Path) -> None:
        with self.page.expect_file_chooser() as chooser:
            self.page.click("#pick")
        chooser.value.set_files([str(p) for p in paths])

    def outside_origin(self) -> list[str]:
        return [url for _, url in self.requests
                if not (url.startswith(self.origin + "/") or url.startswith(("blob:", "data:")))]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Browser, live_server: GunicornServer) -> Iterator[Visit]:
    v = Visit(browser, live_server.url, viewport={"width": 1280, "height": 900})
    yield v
    v.close()
    assert v.errors == [], f"script errors on the page: {v.errors}"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("form-images")
    paths = {
        "beach.jpg": encode(photo(640, 480, seed=1), "JPEG", quality=95),
        "diagram.png": encode(photo(400, 300, seed=2), "PNG"),
        "notes.png": b"these are notes, not a picture\n" * 20,
    }
    for name, data in paths.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in paths}


def card(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("li.card", has=page.locator("h3.name", has_text=name))


def test_the_page_and_its_runtime_come_from_this_origin(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    html = page.get_data(as_text=True)
    assert "http://" not in html
    assert "https://" not in html
    for label_for in re.findall(r'<label for="([^"]+)"', html):
        assert f'id="{label_for}"' in html
    runtime = client.get("/vendor/ort/ort.wasm.min.mjs")
    assert runtime.status_code == 200
    assert runtime.mimetype == "text/javascript"
    wasm = client.get("/vendor/ort/ort-wasm-simd-threaded.wasm")
    assert wasm.status_code == 200
    assert wasm.mimetype == "application/wasm"
    assert wasm.data[:4] == b"\0asm"
    assert client.get("/vendor/ort/..%2fpackage.json").status_code == 404
    assert client.get("/vendor/ort/README.md").status_code == 404
    assert client.get("/assets/form.js").mimetype == "text/javascript"


def direct(server: GunicornServer, path: Path, mode: str) -> bytes:
    """What /api/compress answers for the options the form test sets."""
    with path.open("rb") as image:
        answer = requests.post(server.url + "/api/compress", files={"file": image}, timeout=60,
                               data={"outputFormat": "webp", "quality": "80", "maxWidth": "320",
                                     "stripMetadata": "true", "mode": mode})
    assert answer.status_code == 200, answer.text
    return answer.content


def test_upload_preview_options_and_downloads(visit: Visit, images: dict[str, Path],
                                              live_server: GunicornServer, tmp_path: Path) -> None:
    page = visit.open()
    visit.add_files(images["beach.jpg"], images["diagram.png"])
    beach, diagram = card(page, "beach.jpg"), card(page, "diagram.png")
    expect(beach.locator(".dimensions")).to_have_text("640 × 480 px")
    expect(diagram.locator(".dimensions")).to_have_text("400 × 300 px")
    size = images["beach.jpg"].stat().st_size
    expect(beach.locator(".original")).to_have_text(f"{size / 1000:.1f} KB")
    expect(beach.locator(".after")).to_have_attribute("src", re.compile("^blob:"))
    expect(page.locator("#summary")).to_contain_text("2 images")

    # Options change -> a new live preview of every file, in mode=preview.
    page.select_option("#outputFormat", "webp")
    page.fill("#maxWidth", "320")
    expect(beach.locator(".dimensions")).to_have_text("320 × 240 px")
    expect(diagram.locator(".dimensions")).to_have_text("320 × 240 px")
    expect(beach.locator(".result")).to_contain_text("WebP")
    expect(beach.locator(".saving")).to_contain_text("% smaller")
    # What the card shows is the preview encoding's size (mode=preview), byte for byte,
    preview = direct(live_server, images["beach.jpg"], "preview")
    final = direct(live_server, images["beach.jpg"], "final")
    assert len(preview) != len(final)  # the two modes are told apart below
    # marked as an estimate: the download is encoded again, with full effort.
    expect(beach.locator(".result")).to_have_text(f"≈ {len(preview) / 1000:.1f} KB WebP")
    expect(beach.locator(".result")).to_have_attribute("data-stage", "preview")

    # One file: encoded again with mode=final, downloaded, decoded here.
    with page.expect_download() as download:
        beach.locator("button.download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "beach-compressed.webp"
    with Image.open(saved) as image:
        assert (image.format, image.size) == ("WEBP", (320, 240))
    assert saved.read_bytes() == final  # the download is the mode=final encoding
    expect(beach.locator(".result")).to_have_text(f"{len(final) / 1000:.1f} KB WebP")
    expect(beach.locator(".result")).to_have_attribute("data-stage", "final")

    # All files as one ZIP, each entry a decodable WebP of the asked size.
    with page.expect_download() as download:
        page.click("#download-all")
    assert download.value.suggested_filename == "feather-images.zip"
    archive = tmp_path / "all.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as bundle:
        assert bundle.testzip() is None  # every CRC checks out
        assert sorted(bundle.namelist()) == ["beach-compressed.webp", "diagram-compressed.webp"]
        assert bundle.read("beach-compressed.webp") == saved.read_bytes()
        for name in bundle.namelist():
            with Image.open(io.BytesIO(bundle.read(name))) as image:
                assert (image.format, image.width) == ("WEBP", 320)
    expect(page.locator("#zip-status")).to_contain_text("ZIP ready: 2 images")
    assert visit.outside_origin() == []


def test_an_api_error_is_shown_next_to_its_file(visit: Visit, images: dict[str, Path],
                                                 live_server: GunicornServer) -> None:
    with images["notes.png"].open("rb") as notes:
        expected = requests.post(live_server.url + "/api/compress", files={"file": notes},
                                 timeout=60).json()["error"]["message"]
    page = visit.open()
    page.focus("#pick")  # by keyboard this time: Enter on "Choose images…"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files([str(images["notes.png"]), str(images["diagram.png"])])
    notes_card = card(page, "notes.png")
    expect(notes_card).to_have_class(re.compile(r"\bfailed\b"))
    expect(notes_card.locator(".message")).to_contain_text(expected)
    expect(notes_card.locator(".message")).to_have_attribute("role", "status")
    # The other file is not held back by the bad one.
    expect(card(page, "diagram.png").locator(".dimensions")).to_have_text("400 × 300 px")
    expect(page.locator("#summary")).to_contain_text("1 failed")

    # An out-of-range option is reported in words too, and fixing it recovers.
    page.fill("#targetMB", "-1")
    expect(card(page, "diagram.png").locator(".message")).to_contain_text("targetMB")
    page.fill("#targetMB", "")
    expect(card(page, "diagram.png")).not_to_have_class(re.compile(r"\bfailed\b"))
    assert visit.outside_origin() == []


def test_keyboard_labels_and_a_phone_screen(browser: Browser, live_server: GunicornServer,
                                            images: dict[str, Path]) -> None:
    phone = Visit(browser, live_server.url, viewport={"width": 360, "height": 740},
                  is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        page = phone.open()
        # Every visible control has a name a screen reader can read.
        unnamed = page.evaluate("""() => [...document.querySelectorAll('input, select, button')]
            .filter((el) => el.getAttribute('aria-hidden') !== 'true' && el.type !== 'hidden')
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.textContent.trim() && !el.closest('template'))
            .map((el) => el.outerHTML)""")
        assert unnamed == []

        # Keyboard only: Tab reaches "Choose images", Space opens the file chooser.
        for _ in range(6):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "pick":
                break
        assert page.evaluate("document.activeElement.id") == "pick"
        with page.expect_file_chooser() as chooser:
            page.keyboard.press(" ")
        chooser.value.set_files(str(images["diagram.png"]))
        diagram = card(page, "diagram.png")
        expect(diagram.locator(".dimensions")).to_have_text("400 × 300 px")

        # The before/after slider moves by keyboard.
        divider = diagram.locator("input.divider")
        divider.focus()
        page.keyboard.press("Home")
        assert divider.input_value() == "0"
        split = diagram.locator(".compare").evaluate("e => e.style.getPropertyValue('--split')")
        assert split == "0%"

        # Options in a collapsed section open with the keyboard.
        page.locator("#ai-section summary").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#apiKey")).to_be_visible()

        # Nothing is wider than the phone.
        overflow = page.evaluate("document.documentElement.scrollWidth - "
                                 "document.documentElement.clientWidth")
        assert overflow <= 0
        box = diagram.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 360
        assert phone.outside_origin() == []
        assert phone.errors == []
    finally:
        phone.close()


# ---------------------------------------------------------------- alt text and SEO names


def test_alt_text_and_seo_names_with_a_key(browser: Browser, tmp_path: Path) -> None:
    from feather_cli.keys import create_key
    from feather_server.settings import Settings
    from tests.ai_server import ANSWERS, AiServer

    data_dir = tmp_path / "var"
    key = create_key(Settings.from_env({}, data_dir=str(data_dir)), "starter")[1]
    free_key = create_key(Settings.from_env({}, data_dir=str(data_dir)), "free")[1]
    path = tmp_path / "IMG_0042.jpg"
    path.write_bytes(encode(photo(320, 240, seed=3), "JPEG", quality=90))
    with AiServer(api_key="sk-local") as ai, GunicornServer(
            {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0", "AI_BASE_URL": ai.base_url,
             "AI_MODEL": "vision-test", "AI_API_KEY": "sk-local"}, workers=2) as server:
        visit = Visit(browser, server.url, viewport={"width": 1280, "height": 900})
        try:
            page = visit.open()
            page.select_option("#outputFormat", "webp")
            page.click("#ai-section summary")
            page.fill("#apiKey", key)
            page.check("#autoAltText")
            page.check("#autoRenameSEO")
            page.select_option("#language", "Русский")
            visit.add_files(path)
            photo_card = card(page, "IMG_0042.jpg")
            expect(photo_card.locator(".dimensions")).to_have_text("320 × 240 px")
            with page.expect_download() as download:
                photo_card.locator("button.download").click()
            name = download.value.suggested_filename
            saved = tmp_path / "out"
            download.value.save_as(saved)
            with Image.open(saved) as image:
                assert (image.format, image.size) == ("WEBP", (320, 240))
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+\.webp", name), name
            assert name.startswith("krasn")  # "красные кроссовки", transliterated
            alt = ANSWERS["Русский"][0]
            expect(photo_card.locator(".alt-text")).to_have_text(f"Alt text: {alt}")
            usage = requests.get(server.url + "/api/usage", timeout=60,
                                 headers={"Authorization": f"Bearer {key}"}).json()
            # One AI credit, and one compression: the previews went without the key
            # (this server does not require one), only the download was charged.
            assert (usage["ia_credits_used"], usage["compressor_used"]) == (1, 1)

            # A free plan's 403 is shown in words next to the file.
            page.fill("#apiKey", free_key)
            photo_card.locator("button.download").click()
            expect(photo_card.locator(".message")).to_have_text(
                "AI features require a paid plan. Upgrade to Starter.")
            expect(photo_card).to_have_class(re.compile(r"\bfailed\b"))
            assert visit.outside_origin() == []
            assert visit.errors == []
        finally:
            visit.close()


_DROP = """async ([kind, name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "image/png" }));
  const event = kind === "drop"
    ? new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true })
    : new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true });
  (kind === "drop" ? document.querySelector("main") || document.body : document)
    .dispatchEvent(event);
}"""


def test_files_arrive_by_drop_and_by_paste(visit: Visit) -> None:
    import base64

    page = visit.open()
    dropped = base64.b64encode(encode(photo(300, 200, seed=4), "PNG")).decode()
    pasted = base64.b64encode(encode(photo(200, 300, seed=5), "PNG")).decode()
    page.evaluate(_DROP, ["drop", "dropped.png", dropped])
    page.evaluate(_DROP, ["paste", "pasted.png", pasted])
    expect(card(page, "dropped.png").locator(".dimensions")).to_have_text("300 × 200 px")
    expect(card(page, "pasted.png").locator(".dimensions")).to_have_text("200 × 300 px")
    expect(page.locator("#summary")).to_contain_text("2 images")
    assert visit.outside_origin() == []


def test_watermark_reaches_the_download(visit: Visit, images: dict[str, Path],
                                        tmp_path: Path) -> None:
    mark = tmp_path / "mark.png"
    mark.write_bytes(encode(Image.new("RGBA", (100, 50), (0, 0, 0, 255)), "PNG"))
    white = tmp_path / "white.png"
    white.write_bytes(encode(Image.new("RGB", (400, 300), (255, 255, 255)), "PNG"))
    page = visit.open()
    page.locator("summary", has_text="Watermark").click()
    page.set_input_files("#watermarkFile", str(mark))
    page.select_option("#watermarkPosition", "TL")
    page.locator("#watermarkScale").fill("50")
    page.locator("#watermarkOpacity").fill("100")
    visit.add_files(white)
    white_card = card(page, "white.png")
    expect(white_card.locator(".dimensions")).to_have_text("400 × 300 px")
    with page.expect_download() as download:
        white_card.locator("button.download").click()
    saved = tmp_path / "saved.png"
    download.value.save_as(saved)
    with Image.open(saved) as image:
        rgb = image.convert("RGB")
        margin = round(0.03 * 300)
        # A 200 × 100 black mark in the top-left corner, white elsewhere.
        assert rgb.getpixel((margin + 100, margin + 50)) == (0, 0, 0)
        assert rgb.getpixel((margin + 210, margin + 50)) == (255, 255, 255)
        assert rgb.getpixel((300, 250)) == (255, 255, 255)
    assert visit.outside_origin() == []
