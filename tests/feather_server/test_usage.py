"""GET /api/usage in FluxImage's shape."""

from __future__ import annotations

import io
from pathlib import Path

from feather_cli.keys import create_key, topup_key
from feather_server import create_app
from feather_server.settings import Settings
from tests.images import encode, photo


def test_usage_fields(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path), rate_limit_per_minute=0)
    client = create_app(settings).test_client()
    info, raw = create_key(settings, "starter")
    topup_key(settings, info.prefix, 50)
    headers = {"Authorization": f"Bearer {raw}"}
    client.post("/api/batch", headers=headers, content_type="multipart/form-data",
                data={"file": (io.BytesIO(encode(photo(32, 32), "PNG")), "a.png")})
    body = client.get("/api/usage", headers=headers).get_json()
    assert {k: body[k] for k in (
        "plan", "compressor_used", "compressor_limit", "ia_credits_used", "ia_credits_monthly",
        "ia_topup_credits", "ia_credits_remaining", "canCompress", "canUseIA")} == {
        "plan": "starter", "compressor_used": 1, "compressor_limit": 200,
        "ia_credits_used": 0, "ia_credits_monthly": 200, "ia_topup_credits": 50,
        "ia_credits_remaining": 250, "canCompress": True, "canUseIA": True}
    _, free = create_key(settings, "free")
    body = client.get("/api/usage", headers={"Authorization": f"Bearer {free}"}).get_json()
    assert (body["plan"], body["compressor_limit"], body["canUseIA"]) == ("free", 20, False)
    missing = client.get("/api/usage")
    assert missing.status_code == 401
    assert missing.get_json()["error"] == "Unauthorized"
