"""The FluxImage document's example request, verbatim, against a real gunicorn with a CLI key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tests.ai_server import AiServer
from tests.helpers import open_image
from tests.images import encode, photo
from tests.server import ROOT, GunicornServer


def test_fluximage_example_with_a_cli_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0"}
    flask = Path(sys.executable).with_name("flask")
    created = subprocess.run([str(flask), "--app", "wsgi", "keys", "create", "--plan", "starter"],
                             cwd=ROOT, env={**GunicornServer(env).env}, capture_output=True,
                             text=True, timeout=120, check=True)
    key = re.search(r"flx_live_[0-9a-f]{40}", created.stdout)
    assert key is not None
    (tmp_path / "photo1.jpg").write_bytes(encode(photo(640, 480, seed=1), "JPEG"))
    (tmp_path / "photo2.jpg").write_bytes(encode(photo(480, 640, seed=2), "JPEG"))
    ai_env = {"AI_MODEL": "vision-test", "AI_API_KEY": "sk-test"}
    with AiServer(api_key="sk-test") as ai, GunicornServer(
            {**env, **ai_env, "AI_BASE_URL": ai.base_url}, workers=2) as server:
        # The document's curl example, unchanged but for the host.
        curl = subprocess.run(
            ["curl", "-sS", "-X", "POST", f"{server.url}/api/compress",
             "-H", f"Authorization: Bearer {key.group(0)}",
             "-F", "file=@photo1.jpg", "-F", "file=@photo2.jpg", "-F", "format=webp",
             "-F", "quality=82", "-F", "autoAltText=true", "-F", "language=English",
             "-F", "seoKeywords=product photography"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True)
        import json

        body = json.loads(curl.stdout)
        assert [d["newName"] for d in body["data"]] == ["photo1.webp", "photo2.webp"]
        sizes = []
        for item in body["data"]:
            assert urlsplit(item["downloadUrl"]).netloc == f"127.0.0.1:{server.port}"
            download = requests.get(item["downloadUrl"], timeout=60)
            assert download.status_code == 200
            assert download.headers["Content-Type"] == "image/webp"
            image = open_image(download.content)
            assert image.format == "WEBP"
            sizes.append(image.size)
            assert item["optimizedSize"] == len(download.content) < item["originalSize"]
        assert sizes == [(640, 480), (480, 640)]
        usage = requests.get(f"{server.url}/api/usage", timeout=60,
                             headers={"Authorization": f"Bearer {key.group(0)}"}).json()
        # altText from the AI service, one AI credit per image.
        assert [d["altText"] for d in body["data"]] == [
            "Red running shoes on a white background"] * 2
        assert (usage["compressor_used"], usage["ia_credits_used"]) == (2, 2)
        assert all("product photography" in r.prompt for r in ai.seen())
        gone = requests.get(body["data"][0]["downloadUrl"].replace("expires=", "expires=1"),
                            timeout=60)
        assert gone.status_code == 403
        assert gone.json()["error"] == "FORBIDDEN"
