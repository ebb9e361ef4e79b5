"""`flask keys ...`: the raw key is printed once; list, roll, revoke, topup, plans."""

from __future__ import annotations

import re

from flask.testing import FlaskCliRunner


def test_keys_commands(runner: FlaskCliRunner) -> None:
    created = runner.invoke(args=["keys", "create", "--plan", "starter", "--name", "acme"])
    assert created.exit_code == 0, created.output
    raw = re.search(r"flx_live_[0-9a-f]{40}", created.output)
    assert raw is not None
    listed = runner.invoke(args=["keys", "list"])
    assert "acme" in listed.output
    assert "starter" in listed.output
    assert raw.group(0) not in listed.output
    assert raw.group(0)[:15] in listed.output
    assert "0/200" in listed.output
    topped = runner.invoke(args=["keys", "topup", "1", "25"])
    assert "25 top-up AI credits" in topped.output
    rolled = runner.invoke(args=["keys", "roll", "1"])
    new = re.search(r"flx_live_[0-9a-f]{40}", rolled.output)
    assert new is not None
    assert new.group(0) != raw.group(0)
    assert "revoked" in runner.invoke(args=["keys", "revoke", "1"]).output
    assert "revoked" in runner.invoke(args=["keys", "list"]).output
    bad = runner.invoke(args=["keys", "create", "--plan", "gold"])
    assert bad.exit_code != 0
    assert "No plan 'gold'" in bad.output
    changed = runner.invoke(args=["keys", "plan", "free", "--compressions", "50"])
    assert "plan free: 50 compressions" in changed.output
    unlimited = runner.invoke(args=["keys", "plan", "gold", "--compressions", "unlimited",
                                    "--ai-credits", "5", "--paid"])
    assert "plan gold: unlimited compressions, 5 AI credits a month, paid" in unlimited.output
    plans = runner.invoke(args=["keys", "plans"]).output
    assert "gold" in plans
    assert "agency" in plans
    moved = runner.invoke(args=["keys", "create", "--plan", "gold"])
    assert moved.exit_code == 0
