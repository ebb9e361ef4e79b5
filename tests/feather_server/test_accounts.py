"""Keys, plans, quotas and AI credits, on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from feather_cli.keys import create_key, revoke_key, roll_key, set_plan, topup_key
from feather_server import create_app
from feather_server.accounts import accounting
from feather_server.accounts.database import database_for
from feather_server.ai.ask import AiAsk
from feather_server.ai.describe import Description
from feather_server.api.batch import AI_DESCRIBER
from feather_server.settings import Settings
from tests.accounts_fixtures import database_url  # noqa: F401 - fixture
from tests.images import encode, photo

JPEG = encode(photo(96, 64), "JPEG")


@pytest.fixture
def acc_settings(tmp_path: Path, database_url: str) -> Settings:  # noqa: F811
    return Settings.from_env({}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0,
                             database_url=database_url)


@pytest.fixture
def acc_app(acc_settings: Settings) -> Flask:
    return create_app(acc_settings)


@pytest.fixture
def acc_client(acc_app: Flask) -> FlaskClient:
    return acc_app.test_client()


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def batch(client: FlaskClient, raw: str | None, count: int = 1, **fields: str):  # type: ignore[no-untyped-def]
    data = {"file": [(io.BytesIO(JPEG), f"{i}.jpg") for i in range(count)], **fields}
    return client.post("/api/batch", data=data, content_type="multipart/form-data",
                       headers=bearer(raw) if raw else {})


def feather(client: FlaskClient, raw: str | None, data: bytes = JPEG):  # type: ignore[no-untyped-def]
    return client.post("/api/compress", data={"file": (io.BytesIO(data), "a.jpg")},
                       content_type="multipart/form-data", headers=bearer(raw) if raw else {})


def usage(client: FlaskClient, raw: str) -> dict[str, object]:
    response = client.get("/api/usage", headers=bearer(raw))
    assert response.status_code == 200
    body: dict[str, object] = response.get_json()
    return body


def test_key_is_shown_once_and_stored_as_a_hash(acc_settings: Settings) -> None:
    info, raw = create_key(acc_settings, "starter", "acme")
    assert raw.startswith("flx_live_")
    assert len(raw) == len("flx_live_") + 40
    assert info.prefix == raw[:15]
    with database_for(acc_settings).engine.connect() as connection:
        dump = " ".join(str(v) for row in connection.execute(text("SELECT * FROM api_keys"))
                        for v in row)
    assert raw not in dump
    assert raw[9:] not in dump


def test_wrong_unknown_revoked_keys_get_the_same_401(acc_settings: Settings,
                                                     acc_client: FlaskClient) -> None:
    info, raw = create_key(acc_settings, "free")
    revoke_key(acc_settings, str(info.id))
    answers = [batch(acc_client, key) for key in
               (raw, "flx_live_" + "0" * 40, "nonsense", raw.upper())]
    answers.append(acc_client.post("/api/batch", headers={"Authorization": "Basic abc"}))
    for answer in answers:
        assert answer.status_code == 401
        assert answer.get_json() == {"error": "Unauthorized",
                                     "message": "A valid API key is required"}
    assert feather(acc_client, raw).status_code == 401


def test_roll_kills_the_old_key_at_once_and_keeps_usage(acc_settings: Settings,
                                                        acc_client: FlaskClient) -> None:
    info, old = create_key(acc_settings, "free")
    assert batch(acc_client, old, 2).status_code == 200
    _, new = roll_key(acc_settings, info.prefix)
    assert batch(acc_client, old).status_code == 401
    assert batch(acc_client, new).status_code == 200
    assert usage(acc_client, new)["compressor_used"] == 3


def test_quota_across_both_dialects_and_failures_are_free(acc_settings: Settings,
                                                          acc_client: FlaskClient) -> None:
    set_plan(acc_settings, "free", compressions=5)
    _, raw = create_key(acc_settings, "free")
    assert feather(acc_client, raw).status_code == 200
    assert feather(acc_client, raw, b"broken image").status_code in (415, 422)
    response = batch(acc_client, raw, 2)
    assert response.status_code == 200
    mixed = acc_client.post("/api/batch", headers=bearer(raw), data={
        "file": [(io.BytesIO(JPEG), "ok.jpg"), (io.BytesIO(b"bad bytes!"), "bad.jpg")]},
        content_type="multipart/form-data")
    assert len(mixed.get_json()["data"]) == 1
    assert usage(acc_client, raw)["compressor_used"] == 4
    assert feather(acc_client, raw).status_code == 200
    assert usage(acc_client, raw)["canCompress"] is False
    over = batch(acc_client, raw)
    assert over.status_code == 403
    body = over.get_json()
    assert body["error"] == body["message"]
    assert "monthly limit of 5" in body["message"]
    feather_over = feather(acc_client, raw)
    assert feather_over.status_code == 403
    assert feather_over.get_json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert usage(acc_client, raw)["compressor_used"] == 5


def test_a_batch_larger_than_what_is_left_is_refused_whole(acc_settings: Settings,
                                                           acc_client: FlaskClient) -> None:
    set_plan(acc_settings, "free", compressions=3)
    _, raw = create_key(acc_settings, "free")
    assert batch(acc_client, raw, 2).status_code == 200
    assert batch(acc_client, raw, 2).status_code == 403
    assert usage(acc_client, raw)["compressor_used"] == 2
    assert batch(acc_client, raw, 1).status_code == 200


def test_pro_is_unlimited(acc_settings: Settings, acc_client: FlaskClient) -> None:
    _, raw = create_key(acc_settings, "pro")
    assert batch(acc_client, raw, 3).status_code == 200
    report = usage(acc_client, raw)
    assert report["compressor_limit"] is None
    assert report["canCompress"] is True


def test_ai_needs_a_paid_plan(acc_settings: Settings, acc_client: FlaskClient) -> None:
    _, free = create_key(acc_settings, "free")
    for raw in (free, None):
        answer = batch(acc_client, raw, autoAltText="true")
        assert answer.status_code == 403
        assert answer.get_json() == {
            "error": "ia_not_available",
            "message": "AI features require a paid plan. Upgrade to Starter."}
    assert usage(acc_client, free)["compressor_used"] == 0


def _describer(calls: list[str]):  # type: ignore[no-untyped-def]
    def describe(data: bytes, mime: str, name: str, ask: AiAsk) -> Description:
        calls.append(name)
        if name.startswith("fail"):
            raise RuntimeError("model down")
        return Description(alt_text=f"A photo called {name} in {ask.language}",
                        name="Red Running Shoes")
    return describe


def test_ai_credits_monthly_then_topup_then_no_credits(acc_settings: Settings, acc_app: Flask,
                                                       acc_client: FlaskClient) -> None:
    set_plan(acc_settings, "starter", ai_credits=2)
    calls: list[str] = []
    acc_app.extensions[AI_DESCRIBER] = _describer(calls)
    info, raw = create_key(acc_settings, "starter")
    topup_key(acc_settings, str(info.id), 1)
    first = batch(acc_client, raw, 2, autoAltText="true", autoRenameSEO="true",
                  language="Deutsch")
    assert first.status_code == 200
    items = first.get_json()["data"]
    assert items[0]["altText"] == "A photo called 0.jpg in Deutsch"
    assert items[0]["newName"] == "red-running-shoes.webp"
    report = usage(acc_client, raw)
    assert (report["ia_credits_used"], report["ia_topup_credits"],
            report["ia_credits_remaining"]) == (2, 1, 1)
    assert batch(acc_client, raw, 2, autoAltText="true").get_json()["error"] == "no_credits"
    # A failed AI call gives its credit back; the image is still delivered.
    failed = acc_client.post("/api/batch", headers=bearer(raw), data={
        "file": [(io.BytesIO(JPEG), "fail.jpg")], "autoAltText": "true"},
        content_type="multipart/form-data")
    assert failed.status_code == 200
    assert "altText" not in failed.get_json()["data"][0]
    assert usage(acc_client, raw)["ia_topup_credits"] == 1
    assert batch(acc_client, raw, 1, autoAltText="true").status_code == 200
    report = usage(acc_client, raw)
    assert (report["ia_topup_credits"], report["canUseIA"]) == (0, False)
    no_credits = batch(acc_client, raw, 1, autoRenameSEO="true")
    assert no_credits.status_code == 403
    assert no_credits.get_json() == {
        "error": "no_credits",
        "message": "You have used all your AI credits this month. "
                   "Purchase a top-up to continue."}


def test_watermark_on_free_is_ignored_and_applied_on_paid(acc_settings: Settings,
                                                          acc_client: FlaskClient) -> None:
    from PIL import Image

    from tests.helpers import close, open_image, pixel

    white = encode(Image.new("RGB", (200, 200), (255, 255, 255)), "PNG")
    mark = encode(Image.new("RGBA", (40, 40), (0, 0, 255, 255)), "PNG")
    results = {}
    for plan in ("free", "starter"):
        _, raw = create_key(acc_settings, plan)
        fields = {"file": (io.BytesIO(white), "w.png"), "watermarkOpacity": "100",
                  "watermarkFile": (io.BytesIO(mark), "m.png"), "watermarkPosition": "MC"}
        flux = acc_client.post("/api/batch", headers=bearer(raw),
                               content_type="multipart/form-data",
                               data={**fields, "format": "png"})
        url = flux.get_json()["data"][0]["downloadUrl"].split("localhost", 1)[1]
        flux_image = open_image(acc_client.get(url).data)
        fields = {"file": (io.BytesIO(white), "w.png"), "watermarkOpacity": "100",
                  "watermarkFile": (io.BytesIO(mark), "m.png"), "watermarkPosition": "MC"}
        plain = acc_client.post("/api/compress", headers=bearer(raw), data=fields,
                                content_type="multipart/form-data")
        results[plan] = [pixel(flux_image, 100, 100), pixel(open_image(plain.data), 100, 100)]
    assert all(close(p, (255, 255, 255)) for p in results["free"])
    assert all(close(p, (0, 0, 255)) for p in results["starter"])


def test_hosted_mode_needs_a_key_everywhere(tmp_path: Path, database_url: str) -> None:  # noqa: F811
    settings = Settings.from_env({}, data_dir=str(tmp_path / "v"), rate_limit_per_minute=0,
                                 database_url=database_url, require_api_key=True)
    client = create_app(settings).test_client()
    assert feather(client, None).status_code == 401
    assert feather(client, None).get_json()["error"]["code"] == "UNAUTHORIZED"
    convert = client.post("/api/convert", data={"file": (io.BytesIO(JPEG), "a.jpg"),
                                                "outputFormat": "png"})
    assert convert.status_code == 401
    assert batch(client, None).get_json()["error"] == "Unauthorized"
    _, raw = create_key(settings, "free")
    assert feather(client, raw).status_code == 200
    keyed_convert = client.post("/api/convert", headers=bearer(raw), data={
        "file": (io.BytesIO(JPEG), "a.jpg"), "outputFormat": "png"})
    assert keyed_convert.status_code == 200
    assert keyed_convert.mimetype == "image/png"
    assert usage(client, raw)["compressor_used"] == 2


def test_self_hosted_anonymous_has_no_quota(acc_settings: Settings,
                                            acc_client: FlaskClient) -> None:
    set_plan(acc_settings, "free", compressions=0)
    assert batch(acc_client, None, 2).status_code == 200
    assert feather(acc_client, None).status_code == 200
    assert acc_client.get("/api/usage").status_code == 401


def test_usage_resets_each_period_from_the_creation_day(acc_settings: Settings) -> None:
    info, _ = create_key(acc_settings, "free")
    db = database_for(acc_settings)
    created = datetime(2025, 1, 31, 12, 0)
    with db.session() as session:
        session.execute(text("UPDATE api_keys SET created_at = :c WHERE id = :i"),
                        {"c": created, "i": info.id})
    with db.session() as session:
        held = accounting.reserve(session, info.id, compressions=20, now=datetime(2025, 2, 27))
        accounting.settle(session, held)  # the request ended: its 20 stay spent
    with db.session() as session, pytest.raises(accounting.QuotaExceeded):
        accounting.reserve(session, info.id, compressions=1, now=datetime(2025, 2, 28, 11))
    with db.session() as session:
        held = accounting.reserve(session, info.id, compressions=1, now=datetime(2025, 2, 28, 13))
        accounting.settle(session, held)
        report = accounting.usage_report(session, info.id, now=datetime(2025, 3, 1))
    assert report.compressor_used == 1
    assert (report.period_start, report.period_end) == (datetime(2025, 2, 28, 12),
                                                        datetime(2025, 3, 31, 12))


def test_period_start_rule() -> None:
    created = datetime(2024, 1, 31, 8)
    assert accounting.period_start(created, datetime(2024, 1, 31, 9)) == created
    assert accounting.period_start(created, datetime(2024, 2, 29, 9)) == datetime(2024, 2, 29, 8)
    assert accounting.period_start(created, datetime(2024, 3, 30)) == datetime(2024, 2, 29, 8)
    assert accounting.period_start(created, datetime(2025, 1, 1)) == datetime(2024, 12, 31, 8)
