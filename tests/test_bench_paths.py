"""The committed results and docs name no path of the machine that made them."""

from __future__ import annotations

import re
from pathlib import Path

from bench.images import ROOT, load_photos, shown_path
from bench.report import Results
from tests.images import encode, photo

MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|home|root|tmp|Users|mnt|srv/[^/\s]+)/")


def test_the_bench_names_its_photos_without_absolute_paths(tmp_path: Path) -> None:
    folder = tmp_path / "my photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(encode(photo(64, 48), "JPEG"))
    found = load_photos(str(folder))
    assert found.origin == "my photos"
    text = Results(found.origin, len(found.photos)).markdown()
    assert str(tmp_path) not in text
    assert "Photos: 1 from `my photos`." in text
    assert shown_path(ROOT / "var" / "bench-photos") == "var/bench-photos"
    assert shown_path(ROOT.parent / "photos" / "set") == "../photos/set"


def test_readme_and_docs_hold_no_path_of_this_machine() -> None:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
                 *sorted((ROOT / "samples").rglob("*.md"))]
    for document in documents:
        text = document.read_text(encoding="utf-8")
        assert str(ROOT) not in text, document
        found = MACHINE_PATH.findall(text)
        assert not found, (document, found)
