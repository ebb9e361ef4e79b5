"""AI alt text and SEO names through the batch API, against a local chat-completions server."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from feather_cli.keys import create_key, set_plan, topup_key
from feather_server import create_app
from feather_server.settings import Settings
from tests.accounts_fixtures import database_url  # noqa: F401 - fixture
from tests.ai_server import ANSWERS, AiServer
from tests.helpers import open_image
from tests.images import encode, photo
from tests.server import GunicornServer

JPEG = encode(photo(640, 400), "JPEG", quality=90)
NOT_AVAILABLE = {"error": "ia_not_available",
                 "message": "AI features require a paid plan. Upgrade to Starter."}
NO_CREDITS = {"error": "no_credits",
              "message": "You have used all your AI credits this month. "
                         "Purchase a top-up to continue."}


@pytest.fixture
def ai() -> Iterator[AiServer]:
    with AiServer(api_key="sk-local") as server:
        yield server


def ai_settings(tmp_path: Path, ai: AiServer, **overrides: Any) -> Settings:
    return Settings.from_env({}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0,
                             ai_base_url=ai.base_url, ai_model="vision-test",
                             ai_api_key="sk-local", **overrides)


@pytest.fixture
def settings(tmp_path: Path, ai: AiServer) -> Settings:
    return ai_settings(tmp_path, ai)


@pytest.fixture
def starter(settings: Settings) -> str:
    return create_key(settings, "starter")[1]


def post(client: FlaskClient, key: str | None, count: int = 1, names: list[str] | None = None,
         **fields: str) -> TestResponse:
    names = names or [f"photo{i}.jpg" for i in range(count)]
    data: dict[str, Any] = {"file": [(io.BytesIO(JPEG), n) for n in names], **fields}
    return client.post("/api/batch", data=data, content_type="multipart/form-data",
                       headers={"Authorization": f"Bearer {key}"} if key else {})


def usage(client: FlaskClient, key: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/usage",
                                      headers={"Authorization": f"Bearer {key}"}).get_json()
    return body


def download(client: FlaskClient, url: str) -> TestResponse:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


@pytest.mark.parametrize(("language", "stem"), [
    ("English", "red-running-shoes"),
    ("Русский", "krasnye-krossovki"),
    ("中文", "hong-se-pao-xie"),
    ("Deutsch", "rote-laufschuhe-weiss"),
    ("Hindi", "laal-juute"),
])
def test_alt_text_and_seo_name_in_the_asked_language(client: FlaskClient, starter: str,
                                                     ai: AiServer, language: str,
                                                     stem: str) -> None:
    response = post(client, starter, autoAltText="true", autoRenameSEO="true",
                    language=language, aiContext="sportswear shop",
                    seoKeywords="running shoes men", format="jpg")
    assert response.status_code == 200, response.get_json()
    (item,) = response.get_json()["data"]
    assert item["altText"] == ANSWERS[language][0]
    assert item["newName"] == f"{stem}.jpg"
    got = download(client, item["downloadUrl"])
    assert got.headers["Content-Type"] == "image/jpeg"
    assert f'filename="{stem}.jpg"' in got.headers["Content-Disposition"]
    assert open_image(got.data).size == (640, 400)
    (seen,) = ai.seen()
    assert seen.authorization == "Bearer sk-local"
    assert seen.body["model"] == "vision-test"
    assert seen.language == language  # from the prompt's "Language:" line
    assert "sportswear shop" in seen.prompt
    assert "running shoes men" in seen.prompt
    preview = Image.open(io.BytesIO(base64.b64decode(seen.image_urls[0].split(",", 1)[1])))
    assert preview.format == "JPEG"
    assert max(preview.size) == 512


def test_only_the_asked_feature_shows(client: FlaskClient, starter: str) -> None:
    alt_only = post(client, starter, autoAltText="true").get_json()["data"][0]
    assert alt_only["newName"] == "photo0.webp"
    assert alt_only["altText"]
    rename_only = post(client, starter, autoRenameSEO="true").get_json()["data"][0]
    assert rename_only["newName"] == "red-running-shoes.webp"
    assert "altText" not in rename_only
    assert usage(client, starter)["ia_credits_used"] == 2


@pytest.mark.parametrize("mode", ["prose", "fenced"])
def test_wrapped_answers_work_end_to_end(client: FlaskClient, starter: str, ai: AiServer,
                                         mode: str) -> None:
    ai.mode = mode
    item = post(client, starter, autoAltText="true", autoRenameSEO="true",
                language="Русский").get_json()["data"][0]
    assert (item["altText"], item["newName"]) == (ANSWERS["Русский"][0],
                                                  "krasnye-krossovki.webp")


def test_alt_text_is_capped_at_80_characters(client: FlaskClient, starter: str,
                                             ai: AiServer) -> None:
    ai.reply = ('{"altText": "' + "A pair of bright red running shoes on a white table, " * 4
                + '", "fileName": "' + "bright red running shoes " * 6 + '"}')
    item = post(client, starter, autoAltText="true", autoRenameSEO="true").get_json()["data"][0]
    assert 40 < len(item["altText"]) <= 80
    assert item["altText"].startswith("A pair of bright red running shoes")
    stem = item["newName"].removesuffix(".webp")
    assert len(stem) <= 60
    assert stem.startswith("bright-red-running-shoes-bright")
    assert all(part.isalnum() and part.islower() for part in stem.split("-"))


def test_names_are_unique_within_the_batch_and_the_session(client: FlaskClient,
                                                           starter: str) -> None:
    first = post(client, starter, 3, autoRenameSEO="true", sessionId="shoot-1").get_json()
    assert [d["newName"] for d in first["data"]] == [
        "red-running-shoes.webp", "red-running-shoes-2.webp", "red-running-shoes-3.webp"]
    again = post(client, starter, 2, autoRenameSEO="true", sessionId="shoot-1").get_json()
    assert [d["newName"] for d in again["data"]] == [
        "red-running-shoes-4.webp", "red-running-shoes-5.webp"]
    other = post(client, starter, 1, autoRenameSEO="true", sessionId="shoot-2").get_json()
    assert other["data"][0]["newName"] == "red-running-shoes.webp"
    png = post(client, starter, 1, autoRenameSEO="true", sessionId="shoot-1",
               format="png").get_json()
    assert png["data"][0]["newName"] == "red-running-shoes.png"


def test_credits_both_flags_one_each_failures_free_topups_last(
        tmp_path: Path, ai: AiServer, database_url: str) -> None:  # noqa: F811
    settings = ai_settings(tmp_path, ai, database_url=database_url)
    client = create_app(settings).test_client()
    set_plan(settings, "starter", ai_credits=3)
    info, key = create_key(settings, "starter")
    topup_key(settings, str(info.id), 2)

    both = post(client, key, 2, autoAltText="true", autoRenameSEO="true")
    assert all("altText" in d for d in both.get_json()["data"])
    report = usage(client, key)
    assert (report["ia_credits_used"], report["ia_topup_credits"],
            report["ia_credits_remaining"]) == (2, 2, 3)

    for mode in ("500", "garbage", "401"):  # the image is delivered, without AI, for free
        ai.mode = mode
        failed = post(client, key, 1, names=["Été à Paris.jpg"], autoAltText="true",
                      autoRenameSEO="true")
        assert failed.status_code == 200
        (item,) = failed.get_json()["data"]
        assert item["newName"] == "Été à Paris.webp"
        assert "altText" not in item
        assert download(client, item["downloadUrl"]).status_code == 200
    report = usage(client, key)
    assert (report["ia_credits_used"], report["ia_topup_credits"]) == (2, 2)
    assert report["compressor_used"] == 5

    ai.mode = "good"
    # 1 monthly credit left, then the top-ups.
    assert post(client, key, 2, autoAltText="true").status_code == 200
    report = usage(client, key)
    assert (report["ia_credits_used"], report["ia_topup_credits"]) == (3, 1)
    refused = post(client, key, 2, autoRenameSEO="true")
    assert (refused.status_code, refused.get_json()) == (403, NO_CREDITS)
    assert post(client, key, 1, autoRenameSEO="true").status_code == 200
    report = usage(client, key)
    assert (report["ia_topup_credits"], report["ia_credits_remaining"],
            report["canUseIA"]) == (0, 0, False)
    assert (post(client, key, 1, autoAltText="true").get_json()) == NO_CREDITS
    assert report["compressor_used"] == 8  # refused batches cost nothing


def test_403_bodies_for_free_anonymous_and_an_unconfigured_server(
        tmp_path: Path, client: FlaskClient, settings: Settings, ai: AiServer) -> None:
    free = create_key(settings, "free")[1]
    for key in (free, None):
        answer = post(client, key, autoAltText="true")
        assert (answer.status_code, answer.get_json()) == (403, NOT_AVAILABLE)
    assert usage(client, free)["compressor_used"] == 0
    assert ai.seen() == []

    bare = Settings.from_env({}, data_dir=str(tmp_path / "bare"), rate_limit_per_minute=0)
    bare_client = create_app(bare).test_client()
    paid = create_key(bare, "pro")[1]
    answer = post(bare_client, paid, autoRenameSEO="true")
    assert answer.status_code == 403
    body = answer.get_json()
    assert body["error"] == "ia_not_available"
    assert "not configured" in body["message"]
    assert "AI_BASE_URL" in body["message"]
    assert usage(bare_client, paid)["compressor_used"] == 0
    assert post(bare_client, paid).status_code == 200  # without AI all is well


@pytest.mark.parametrize("language", ["Klingon", "english", "Spanish", "zh"])
def test_unknown_languages_are_400(client: FlaskClient, starter: str, language: str) -> None:
    answer = post(client, starter, autoAltText="true", language=language)
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "INVALID_INPUT"
    assert "Español" in body["message"]
    assert usage(client, starter)["compressor_used"] == 0


def test_a_slow_provider_cannot_push_the_request_past_its_timeout(tmp_path: Path,
                                                                  ai: AiServer) -> None:
    ai.mode, ai.slow_seconds = "slow", 120
    data_dir = tmp_path / "var"
    env = {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0",
           "REQUEST_TIMEOUT_MS": "4000", "AI_TIMEOUT_MS": "100000",
           "AI_BASE_URL": ai.base_url, "AI_MODEL": "vision-test", "AI_API_KEY": "sk-local"}
    key = create_key(Settings.from_env({}, data_dir=str(data_dir)), "pro")[1]
    files = [("file", (f"p{i}.jpg", encode(photo(320, 240, seed=i), "JPEG"), "image/jpeg"))
             for i in range(8)]
    with GunicornServer(env, workers=2) as server:
        started = time.monotonic()
        answer = requests.post(f"{server.url}/api/batch", files=files, timeout=100,
                               data={"autoAltText": "true", "autoRenameSEO": "true"},
                               headers={"Authorization": f"Bearer {key}"})
        elapsed = time.monotonic() - started
        assert answer.status_code == 200
        items = answer.json()["data"]
        assert [d["newName"] for d in items] == [f"p{i}.webp" for i in range(8)]
        assert all("altText" not in d for d in items)
        report = requests.get(f"{server.url}/api/usage", timeout=60,
                              headers={"Authorization": f"Bearer {key}"}).json()
        assert (report["ia_credits_used"], report["compressor_used"]) == (0, 8)
    assert ai.max_in_flight > 1  # the calls were made together, not one by one
    # The provider would have taken 120 s; the request ended near its 4 s budget.
    assert elapsed < 40
