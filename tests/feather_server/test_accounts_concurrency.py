"""Two gunicorn workers racing on the last credits never both win (SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from feather_cli.keys import create_key, set_plan
from feather_server.settings import Settings
from tests.accounts_fixtures import database_url  # noqa: F401 - fixture
from tests.images import encode, photo
from tests.server import GunicornServer

JPEG = encode(photo(48, 32), "JPEG")


def test_last_credits_are_won_once(tmp_path: Path, database_url: str) -> None:  # noqa: F811
    data_dir = tmp_path / "var"
    settings = Settings.from_env({}, data_dir=str(data_dir), database_url=database_url)
    set_plan(settings, "free", compressions=6)
    _, raw = create_key(settings, "free")
    env = {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0",
           "DATABASE_URL": database_url}
    with GunicornServer(env, workers=2) as server:
        def one(index: int) -> tuple[int, str]:
            headers = {"Authorization": f"Bearer {raw}"}
            if index % 2:
                answer = requests.post(server.url + "/api/compress", headers=headers,
                                       files={"file": ("a.jpg", JPEG)}, timeout=120)
            else:
                answer = requests.post(server.url + "/api/batch", headers=headers,
                                       files={"file": ("a.jpg", JPEG)}, timeout=120)
            return answer.status_code, answer.text[:300]

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(one, range(16)))
        usage = requests.get(server.url + "/api/usage",
                             headers={"Authorization": f"Bearer {raw}"}, timeout=60).json()
        # What the server said about anything but a 200 or a 403: the cause, if one fails.
        unexpected = [text for status, text in answers if status not in (200, 403)]
        log = server.log()[-8000:] if unexpected else ""
    assert sorted(status for status, _ in answers) == [200] * 6 + [403] * 10, (unexpected, log)
    assert usage["compressor_used"] == 6
    assert usage["canCompress"] is False
