"""feather_core is a pure library: no Flask, no Werkzeug, no app, no environment."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.paths import ROOT

CORE = ROOT / "feather_core"


def test_importing_the_core_loads_no_web_framework() -> None:
    code = (
        "import sys, feather_core, feather_core.compress, feather_core.pipeline;"
        "bad = [m for m in sys.modules if m.split('.')[0] in"
        " ('flask', 'werkzeug', 'feather_server', 'feather_cli')];"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=CORE.parent)
    assert done.stdout.strip() == ""


def test_the_core_never_reads_the_environment() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
