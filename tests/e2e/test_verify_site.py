"""``consentry verify-site`` against the demo shop (it must pass) and against the broken copy
(an ad tag without ``data-consent``, a partner cookie set before any choice: it must catch
both), run as the command a CI job runs; then the period evidence pack includes the reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from browser_support import Shop, require_chromium, running_shop
from consentry.config import Settings
from consentry.services.receipt_signing import load_receipt_keys
from consentry.storefront.site_report import read

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    require_chromium()
    with running_shop(tmp_path_factory.mktemp("verify-shop")) as running:
        yield running


def consentry(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSENTRY_DEMO": "true"}
    env.pop("CONSENTRY_CATALOGUE", None)  # the demo catalogue, as the shop's server uses
    return subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "consentry", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_verify_site_passes_on_the_demo_shop_and_catches_the_broken_copy(
    shop: Shop, tmp_path: Path
) -> None:
    good = consentry("verify-site", f"{shop.url}/demo/shop/", cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "passed:" in good.stdout
    for state in (
        "no choice",
        "Refuse all",
        "Accept all",
        "only analytics.product",
        "only sharing.ad_partners",
        "GPC on",
        "withdrawal mid-session",
    ):
        assert f"  {state}: ok" in good.stderr, state
    reports = sorted((tmp_path / "site-checks").glob("*.json"))
    assert len(reports) == 1
    keys = load_receipt_keys(Settings(demo=True))
    check = read(reports[0], keys)
    assert check is not None and check.signature == "valid"
    report = check.report
    assert report["passed"] is True and report["violations"] == []
    phases = {(s["name"], p["name"]): p for s in report["scenarios"] for p in s["phases"]}
    accepted = phases[("Accept all", "after Accept all")]
    assert {h.split(".")[0] for h in accepted["third_party"]} == {
        "mesurine",
        "adlytics",
        "bannerfield",
    }  # the check saw the tags load: it judged something
    assert {"_msr_id", "_adl_uid", "_bnf_id"} <= set(accepted["cookies_and_storage"])
    assert phases[("Refuse all", "after Refuse all")]["third_party"] == []
    assert phases[("withdrawal mid-session", "after withdrawing everything")]["third_party"] == []

    broken = consentry("verify-site", f"{shop.url}/demo/broken-shop/", cwd=tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    lines = broken.stdout.splitlines()
    tag = f"http://adlytics.localhost:{shop.partners_port}/tag.js"
    assert any(
        line.startswith("[no choice / before any choice] request " + tag) for line in lines
    ), broken.stdout
    assert any(line.startswith("[Refuse all / after Refuse all] request " + tag) for line in lines)
    assert any(line.startswith("[no choice / before any choice] cookie _bnf_id") for line in lines)
    assert not any("mesurine" in line or "bannerfield" in line for line in lines)  # gated ones

    # A report that was altered no longer verifies.
    second = sorted((tmp_path / "site-checks").glob("*.json"))[-1]
    document = json.loads(second.read_text(encoding="utf-8"))
    document["report"]["passed"] = True
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(document), encoding="utf-8")
    changed = read(altered, keys)
    assert changed is not None and changed.signature.startswith("invalid")

    today = datetime.now(UTC).date()
    pack = consentry(
        "report",
        "--from",
        str(today),
        "--to",
        str(today + timedelta(days=1)),
        cwd=tmp_path,
    )
    assert pack.returncode == 0, pack.stderr
    assert "What the shop did in a browser" in pack.stdout
    assert f"{shop.url}/demo/shop/" in pack.stdout
    assert "failed: " in pack.stdout and "signature valid" in pack.stdout
