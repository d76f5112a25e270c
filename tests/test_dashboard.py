"""The read-only dashboard of ``aol serve``: its JSON answers, its access rules, and the pages
in a real headless Chromium, on SQLite and PostgreSQL.

The browser tests need Chromium from the operating system's packages (Debian:
``apt-get install chromium``). Without it they skip, unless ``AOL_REQUIRE_BROWSER=1`` (set in
CI), where a missing browser fails them.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from aol_core.testing import ActionHarness
from probes import START_SECONDS, get, served

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        if os.environ.get("AOL_REQUIRE_BROWSER", "") not in ("", "0"):
            pytest.fail("AOL_REQUIRE_BROWSER is set but no Chromium is installed "
                        "(apt-get install chromium)")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    return found


def rendered(url: str, *extra: str) -> str:
    """The page's DOM after Chromium loaded and rendered it."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", *extra, "--dump-dom", url],
            capture_output=True, text=True, timeout=START_SECONDS * 2)
    assert done.returncode == 0, done.stderr
    return done.stdout


def text_of(dom: str, element_id: str) -> str:
    """The text inside the element with ``element_id``, tags removed."""
    found = re.search(rf"<(\w+) id=\"?{element_id}\"?[^>]*>(.*?)</\1>", dom, re.S)
    assert found, f"no element {element_id}"
    return re.sub(r"<[^>]+>", " ", found.group(2))


def as_json(url: str, token: str | None = None) -> Any:
    status, content_type, body = get(url, token, json=True)
    assert (status, content_type) == (200, "application/json"), body
    return json.loads(body)


def seed(harness: ActionHarness) -> dict[str, int]:
    """Two PENDING TEST_NOOP, one HELD, one succeeded with an artifact."""
    ids = {
        "pending": harness.enqueue("TEST_NOOP", {"note": "first <b>bold</b>"}),
        "pending2": harness.enqueue("TEST_NOOP", {"note": "second"}),
        "held": harness.enqueue("TEST_HOLD", {"reason": "post may be online"}),
        "artifact": harness.enqueue("TEST_ARTIFACT", {"text": "proof <script>x</script>"}),
    }
    harness.run_due(action_types=["TEST_HOLD", "TEST_ARTIFACT"])
    return ids


def test_the_overview_counts_actions_by_status_and_type(
    harness: ActionHarness, db_url: str,
) -> None:
    seed(harness)
    with served(db_url) as url:
        data = as_json(f"{url}/")

    counts = {row["action_type"]: row for row in data["counts"]}
    assert counts["TEST_NOOP"]["PENDING"] == 2
    assert counts["TEST_HOLD"]["HELD"] == 1
    assert counts["TEST_ARTIFACT"]["SUCCESS"] == 1
    assert data["last_hour"]["finished"] == 1
    assert data["last_hour"]["failure_rate"] == 0
    assert data["flags"] == {"paused": False, "killed": False, "proof_mode": False}
    assert [p["plugin"].split()[0] for p in data["plugins"] if p["status"] == "loaded"] == [
        "aol-test-actions"]


def test_the_listing_filters_by_status_type_key_and_payload_text(
    harness: ActionHarness, db_url: str,
) -> None:
    ids = seed(harness)
    key = harness.action(ids["pending2"]).idempotency_key
    with served(db_url) as url:
        def listed(**query: str) -> list[int]:
            return [row["id"] for row in
                    as_json(f"{url}/actions?{urlencode(query)}")["actions"]]

        assert listed(status="held") == [ids["held"]]
        assert listed(type="TEST_NOOP") == [ids["pending2"], ids["pending"]]
        assert listed(key=key) == [ids["pending2"]]
        assert listed(text="<b>bold") == [ids["pending"]]
        assert listed(since="+1h") == []


def test_a_bad_filter_is_a_400_naming_it(harness: ActionHarness, db_url: str) -> None:
    with served(db_url) as url:
        status, _, body = get(f"{url}/actions?status=LOST", json=True)

    assert status == 400
    assert json.loads(body)["error"].startswith("unknown status 'LOST'")


def test_an_action_page_has_payload_log_artifacts_and_explanation(
    harness: ActionHarness, db_url: str,
) -> None:
    ids = seed(harness)
    with served(db_url) as url:
        held = as_json(f"{url}/actions/{ids['held']}")
        done = as_json(f"{url}/actions/{ids['artifact']}")
        status, content_type, content = get(f"{url}/actions/{ids['artifact']}/artifacts/"
                                            "proof.txt")
        missing = get(f"{url}/actions/999", json=True)

    assert held["payload"]["reason"] == "post may be online"
    assert [r["code"] for r in held["explanation"]] == ["held"]
    assert any("held: post may be online" in line["message"] for line in held["log"])
    assert [a["name"] for a in done["artifacts"]] == ["proof.txt"]
    assert (status, content_type) == (200, "text/plain; charset=utf-8")
    assert content == "proof <script>x</script>"
    assert missing[0] == 404


def test_with_a_token_set_pages_want_it(harness: ActionHarness, db_url: str) -> None:
    with served(db_url, AOL_SERVE_READ_TOKEN="read-me") as url:
        without = get(f"{url}/", json=True)
        wrong = get(f"{url}/", "guess", json=True)
        right = get(f"{url}/", "read-me", json=True)
        probe = get(f"{url}/healthz")

    assert (without[0], wrong[0], right[0]) == (401, 401, 200)
    assert probe[0] == 200  # probes need only AOL_SERVE_PROBES_TOKEN
    assert "read-me" not in right[2]


def test_the_login_form_gives_a_session_cookie_that_is_not_the_token(
    harness: ActionHarness, db_url: str,
) -> None:
    with served(db_url, AOL_SERVE_READ_TOKEN="read-me") as url:
        address = urlsplit(url)

        def request(method: str, path: str, body: str = "", cookie: str = "") -> Any:
            connection = http.client.HTTPConnection(address.hostname, address.port,
                                                    timeout=START_SECONDS)
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if cookie:
                headers["Cookie"] = cookie
            connection.request(method, path, body, headers)
            reply = connection.getresponse()
            reply.read()
            return reply

        refused = request("POST", "/login", "token=guess")
        sent_away = request("GET", "/")
        logged_in = request("POST", "/login", "token=read-me")
        cookie = logged_in.getheader("Set-Cookie").split(";")[0]
        with_cookie = request("GET", "/", cookie=cookie)

    assert refused.status == 401
    assert (sent_away.status, sent_away.getheader("Location")) == (303, "/login")
    assert logged_in.status == 303
    assert "read-me" not in cookie and "HttpOnly" in logged_in.getheader("Set-Cookie")
    assert with_cookie.status == 200


def test_chromium_shows_the_overview_with_the_seeded_counts(
    harness: ActionHarness, db_url: str,
) -> None:
    seed(harness)
    with served(db_url) as url:
        dom = rendered(f"{url}/")

    counts = text_of(dom, "counts")
    assert re.search(r"TEST_NOOP\s+2\s", counts)  # the PENDING column comes first
    assert "TEST_HOLD" in counts
    assert "1 finished" in text_of(dom, "last-hour")


def test_chromium_filters_the_listing_and_opens_an_action(
    harness: ActionHarness, db_url: str,
) -> None:
    ids = seed(harness)
    with served(db_url) as url:
        listing = rendered(f"{url}/actions?status=HELD")
        action = rendered(f"{url}/actions/{ids['artifact']}")

    assert f"/actions/{ids['held']}" in listing
    assert f"/actions/{ids['pending']}\"" not in listing
    assert "finished: succeeded" in text_of(action, "explanation")
    assert "proof.txt" in text_of(action, "artifacts")
    assert "<script>" not in action  # payloads and artifacts are shown as text


def test_chromium_shows_the_login_form_when_a_token_is_set(
    harness: ActionHarness, db_url: str,
) -> None:
    with served(db_url, AOL_SERVE_READ_TOKEN="read-me") as url:
        dom = rendered(f"{url}/")

    assert "<form method=\"post\" action=\"/login\">" in dom
