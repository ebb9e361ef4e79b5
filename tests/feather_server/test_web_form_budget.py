"""The upload form against its server's own rate limits: real Chromium, real gunicorn.

Twenty photos, four option changes and "Download all" must end with every card done
under the default limits (60 requests a minute of real work, 120 previews), and when a
limit is hit anyway the page waits out Retry-After and goes on by itself.
"""

from __future__ import annotations

import io
import re
import zipfile
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

LONG_MS = 180_000  # a whole minute of waiting for the rate limit, on a loaded machine


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Twenty photos; some larger than a preview (1,024 px a side), so those previews are
    made reduced and their sizes estimated."""
    folder = tmp_path_factory.mktemp("twenty")
    paths = []
    for seed in range(20):
        size = (1280, 960) if seed % 4 == 0 else (640, 480)
        path = folder / f"photo-{seed:02}.jpg"
        path.write_bytes(encode(photo(*size, seed=seed), "JPEG", quality=92))
        paths.append(path)
    return paths


def settled(page: Page) -> None:
    """Wait until no card on screen is still being previewed."""
    page.wait_for_function("""() => [...document.querySelectorAll('li.card')]
        .filter((c) => { const r = c.getBoundingClientRect();
                         return r.bottom > 0 && r.top < innerHeight; })
        .every((c) => !c.dataset.busy && ['preview', 'final'].includes(c.dataset.state))""")


def card_states(page: Page) -> list[str]:
    states: list[str] = page.evaluate(
        "[...document.querySelectorAll('li.card')].map((c) => c.dataset.state)")
    return states


def test_twenty_photos_four_option_changes_and_download_all(
        browser: Browser, default_server: GunicornServer, twenty: list[Path],  # noqa: F811
        tmp_path: Path) -> None:
    visit = visit_of(browser, default_server)
    answers = Answers(visit.page, default_server.url)
    try:
        page = visit.open()
        visit.add_files(*twenty)
        expect(page.locator("#summary")).to_contain_text("20 images")
        settled(page)
        # Cards below the screen are not previewed until they are scrolled to.
        assert "queued" in card_states(page)

        # Four option changes; each previews again only the cards on screen.
        page.select_option("#outputFormat", "webp")
        settled(page)
        page.locator("#quality").fill("60")
        settled(page)
        page.fill("#maxWidth", "600")
        settled(page)
        page.select_option("#visualQuality", "auto:eco")
        settled(page)
        first = card(page, "photo-00.jpg")
        expect(first.locator(".result")).to_have_text(re.compile(r"^≈ [\d.]+ KB WebP$"))
        expect(first.locator(".dimensions")).to_have_text("600 × 450 px")
        previews = answers.statuses("/api/compress")
        # 20 cards and 4 changes were 100 previews when every card was previewed again;
        # only those on screen are (a few per change).
        assert len(previews) < 50, len(previews)

        with page.expect_download(timeout=LONG_MS) as download:
            page.click("#download-all")
        expect(page.locator("#zip-status")).to_have_text(re.compile(r"^ZIP ready: 20 images"))
        assert card_states(page) == ["final"] * 20
        expect(page.locator("li.card.failed")).to_have_count(0)
        # The page never went over its own server's limits.
        assert 429 not in [status for _, _, status in answers.seen], answers.seen
        assert all(status == 200 for status in answers.statuses("/api/compress"))

        archive = tmp_path / "all.zip"
        download.value.save_as(archive)
        with zipfile.ZipFile(archive) as bundle:
            names = sorted(bundle.namelist())
            assert names == [f"photo-{i:02}-compressed.webp" for i in range(20)]
            for name in names:
                data = bundle.read(name)
                with Image.open(io.BytesIO(data)) as image:
                    assert (image.format, image.width) == ("WEBP", 600)
                # Each card shows the real size of what was downloaded, not an estimate.
                shown = card(page, name.replace("-compressed.webp", ".jpg")).locator(".result")
                expect(shown).to_have_text(f"{len(data) / 1000:.1f} KB WebP")
        expect(page.locator("#summary")).to_have_text(
            re.compile(r"^20 images · [\d.]+ MB → [\d.]+ KB"))
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "form.png")
        assert visit.outside_origin() == []
        assert visit.errors == []
    finally:
        visit.close()


@pytest.fixture
def tight_server(tmp_path: Path) -> Iterator[GunicornServer]:
    """A server with a budget far too small for what the page will ask: 6 requests a
    minute, previews included."""
    data = tmp_path / "var"
    with GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": "6",
                         "RATE_LIMIT_PREVIEWS_PER_MINUTE": "0"}, workers=2) as server:
        yield server


def test_over_the_limit_the_page_waits_and_goes_on_by_itself(
        browser: Browser, tight_server: GunicornServer, tmp_path: Path) -> None:  # noqa: F811
    paths = []
    for seed in range(5):
        path = tmp_path / f"small-{seed}.png"
        path.write_bytes(encode(photo(240, 180, seed=seed), "PNG"))
        paths.append(path)
    # Tall enough for every card to be on screen: five previews, then five downloads,
    # ten requests where six a minute are allowed.
    visit = visit_of(browser, tight_server, viewport={"width": 1280, "height": 2400})
    answers = Answers(visit.page, tight_server.url)
    try:
        page = visit.open()
        page.select_option("#outputFormat", "png")
        visit.add_files(*paths)
        settled(page)
        with page.expect_download(timeout=LONG_MS) as download:
            page.click("#download-all")
            # The limit is reached: the page says it waits, and nothing fails meanwhile.
            status = page.locator("#queue-status")
            expect(status).to_be_visible(timeout=LONG_MS)
            expect(status).to_contain_text("rate limit")
            expect(status).to_contain_text(re.compile(r"downloads continue in \d+ s"))
            expect(page.locator("li.card[data-state='waiting']").first).to_be_visible()
            expect(page.locator("li.card.failed")).to_have_count(0)
        expect(page.locator("#zip-status")).to_have_text(re.compile(r"^ZIP ready: 5 images"),
                                                         timeout=LONG_MS)
        assert card_states(page) == ["final"] * 5
        expect(status).to_be_hidden()
        statuses = answers.statuses("/api/compress")
        assert 429 in statuses  # the limit was hit...
        assert statuses.count(200) == 10  # ...and every request went through in the end
        with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as bundle:
            assert len(bundle.namelist()) == 5
        assert visit.errors == []
    finally:
        visit.close()
