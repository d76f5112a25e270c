"""``aol campaigns ...`` as an operator types it: the real ``aol`` entry point, in process,
against the test's database."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aol_core.cli import main
from aol_core.testing import ActionHarness

from aol_campaign_ops.testing import metrics, task, tasks

#: ``aol(*args)`` runs ``aol --db URL args`` and returns (exit code, stdout, stderr)
Aol = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    aol_harness: ActionHarness, aol_database_url: str, capsys: pytest.CaptureFixture[str]
) -> Aol:
    """The harness has made the database and its tables; ``aol`` runs commands on it."""

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["--db", aol_database_url, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def created_id(result: tuple[int, str, str]) -> int:
    code, out, err = result
    assert code == 0, err
    return int(out.strip())


def test_create_prints_the_new_campaigns_id_and_list_shows_it(run: Aol) -> None:
    campaign = created_id(run("campaigns", "create", "Spring launch", "--owner",
                              "ops@example.com", "--timezone", "Europe/Berlin",
                              "--starts", "2030-01-01", "--ends", "2030-03-31"))

    code, out, _ = run("campaigns", "list", "--json")

    assert code == 0
    assert json.loads(out) == [{
        "id": campaign, "name": "Spring launch", "status": "ACTIVE",
        "owner_email": "ops@example.com", "timezone": "Europe/Berlin",
        "starts_on": "2030-01-01", "ends_on": "2030-03-31"}]


def test_list_as_text_is_one_line_per_campaign(run: Aol) -> None:
    created_id(run("campaigns", "create", "Spring launch"))
    created_id(run("campaigns", "create", "Summer sale", "--status", "PAUSED"))

    code, out, _ = run("campaigns", "list")

    assert code == 0
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["1", "ACTIVE", "Spring launch"], ["2", "PAUSED", "Summer sale"]]


def test_a_deadline_without_offset_is_read_in_the_campaigns_zone(
    run: Aol, aol_harness: ActionHarness
) -> None:
    campaign = created_id(run("campaigns", "create", "Berlin", "--timezone", "Europe/Berlin"))

    added = created_id(run("campaigns", "add-task", str(campaign), "Post teaser",
                           "--due", "2030-01-08T10:00", "--type", "POST"))

    stored = task(aol_harness, added)
    assert stored.due_at is not None
    assert stored.due_at.isoformat() == "2030-01-08T09:00:00+00:00"
    assert stored.task_type == "POST"


def test_show_lists_open_tasks_soonest_first_in_the_campaigns_zone(run: Aol) -> None:
    campaign = str(created_id(run("campaigns", "create", "Berlin", "--timezone",
                                  "Europe/Berlin")))
    later = created_id(run("campaigns", "add-task", campaign, "later", "--due",
                           "2030-01-09T10:00"))
    undated = created_id(run("campaigns", "add-task", campaign, "whenever"))
    sooner = created_id(run("campaigns", "add-task", campaign, "sooner", "--due",
                            "2030-01-08T10:00+00:00"))
    finished = created_id(run("campaigns", "add-task", campaign, "finished"))
    assert run("campaigns", "done", str(finished))[0] == 0

    code, out, _ = run("campaigns", "show", campaign, "--json")

    assert code == 0
    shown = json.loads(out)
    assert [(t["id"], t["due_at"]) for t in shown["open_tasks"]] == [
        (sooner, "2030-01-08T11:00:00+01:00"), (later, "2030-01-09T10:00:00+01:00"),
        (undated, None)]
    text = run("campaigns", "show", campaign)[1]
    assert "campaign 1: Berlin (ACTIVE)" in text and "open tasks: 3" in text


def test_done_marks_the_task_done_with_an_audit_row(
    run: Aol, aol_harness: ActionHarness
) -> None:
    campaign = created_id(run("campaigns", "create", "Spring launch"))
    added = created_id(run("campaigns", "add-task", str(campaign), "Post teaser"))

    assert run("campaigns", "done", str(added))[0] == 0

    assert [t.status for t in tasks(aol_harness, campaign)] == ["DONE"]


def test_add_metric_records_the_numbers_at_the_time_given(
    run: Aol, aol_harness: ActionHarness
) -> None:
    campaign = created_id(run("campaigns", "create", "Spring launch"))

    created_id(run("campaigns", "add-metric", str(campaign), "linkedin", "--impressions",
                   "900", "--engagement", "60", "--clicks", "75", "--at",
                   "2029-12-31T10:00+00:00"))

    [entry] = metrics(aol_harness, campaign)
    assert (entry.platform, entry.impressions, entry.engagement, entry.clicks) == (
        "linkedin", 900, 60, 75)
    assert entry.recorded_at.isoformat() == "2029-12-31T10:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("create", "x", "--timezone", "Mars/Base"), "unknown time zone 'Mars/Base'"),
        (("create", "x", "--owner", "ops at example"), "is not an address"),
        (("create", "x", "--starts", "2030-02-01", "--ends", "2030-01-01"),
         "ends (2030-01-01) before it starts (2030-02-01)"),
        (("create", "x", "--starts", "March"), "--starts 'March' is not a day"),
        (("add-task", "404", "orphan"), "no campaign with id 404"),
        (("add-task", "1", "t", "--due", "tomorrow"), "--due 'tomorrow' is not a time"),
        (("add-metric", "1", "x", "--clicks", "-1"), "metric counts cannot be negative"),
        (("done", "404"), "no task with id 404"),
        (("show", "404"), "no campaign with id 404"),
    ],
)
def test_a_mistake_is_one_line_exit_1_and_writes_nothing(
    run: Aol, aol_harness: ActionHarness, args: tuple[str, ...], complaint: str
) -> None:
    created_id(run("campaigns", "create", "existing"))
    before = aol_harness.row_counts()

    code, out, err = run("campaigns", *args)

    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and complaint in err, err
    assert aol_harness.row_counts() == before


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rows.csv"
    path.write_text(text)
    return str(path)


def test_importing_tasks_adds_every_row_in_file_order(
    run: Aol, aol_harness: ActionHarness, tmp_path: Path
) -> None:
    campaign = created_id(run("campaigns", "create", "Berlin", "--timezone", "Europe/Berlin"))
    rows = write(tmp_path, "title,due,type\nPost teaser,2030-01-08T10:00,post\nCall agency,,\n")

    code, out, err = run("campaigns", "import-tasks", str(campaign), rows)

    assert code == 0, err
    added = tasks(aol_harness, campaign)
    assert out == f"imported 2 task(s): ids {added[0].id}, {added[1].id}\n"
    assert [(t.title, t.task_type, t.due_at) for t in added] == [
        ("Post teaser", "POST", datetime(2030, 1, 8, 9, tzinfo=UTC)),
        ("Call agency", "MANUAL", None)]


def test_one_refused_row_imports_nothing_and_each_refusal_is_named_by_line(
    run: Aol, aol_harness: ActionHarness, tmp_path: Path
) -> None:
    campaign = created_id(run("campaigns", "create", "Spring launch"))
    rows = write(tmp_path, "title,due,type\nfine,,\nlate,tomorrow,\n,,\nodd,,WRONG\n"
                           "extra,,,field\n")
    before = aol_harness.row_counts()

    code, out, err = run("campaigns", "import-tasks", str(campaign), rows)

    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{rows}:3: due 'tomorrow' is not a time like 2030-01-08T10:00",
        f"{rows}:4: title is empty",
        f"{rows}:5: type 'WRONG' is not one of POST, ENGAGE, FOLLOW_UP, REVIEW, ANALYZE, "
        "MANUAL",
        f"{rows}:6: more fields than the header names",
        "aol: error: nothing imported: 4 of 5 row(s) refused",
    ]
    assert aol_harness.row_counts() == before


def test_importing_metrics_reads_counts_and_times(
    run: Aol, aol_harness: ActionHarness, tmp_path: Path
) -> None:
    campaign = created_id(run("campaigns", "create", "Spring launch"))
    rows = write(tmp_path, "platform,impressions,engagement,clicks,recorded_at\n"
                           "linkedin,900,60,75,2029-12-31T10:00+00:00\nx,,,5,\n")

    code, _, err = run("campaigns", "import-metrics", str(campaign), rows)

    assert code == 0, err
    assert [(m.platform, m.impressions, m.engagement, m.clicks)
            for m in metrics(aol_harness, campaign)] == [
        ("linkedin", 900, 60, 75), ("x", 0, 0, 5)]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("name\nx\n", "the CSV header must name platform"),
        ("platform,clicks\nx,-1\n", "rows.csv:2: clicks '-1' is not a whole number"),
        ("platform,clicks\nx,many\n", "rows.csv:2: clicks 'many' is not a whole number"),
    ],
)
def test_a_bad_metrics_file_imports_nothing(
    run: Aol, aol_harness: ActionHarness, tmp_path: Path, text: str, complaint: str
) -> None:
    campaign = created_id(run("campaigns", "create", "Spring launch"))

    code, _, err = run("campaigns", "import-metrics", str(campaign), write(tmp_path, text))

    assert code == 1 and complaint in err, err
    assert metrics(aol_harness, campaign) == []


def test_a_missing_file_is_one_line(run: Aol, tmp_path: Path) -> None:
    created_id(run("campaigns", "create", "Spring launch"))

    code, _, err = run("campaigns", "import-tasks", "1", str(tmp_path / "absent.csv"))

    assert code == 1
    assert err == f"aol: error: cannot read {tmp_path / 'absent.csv'}: No such file or directory\n"


def test_add_item_schedules_a_post_and_show_lists_upcoming_posts_soonest_first(
    run: Aol,
) -> None:
    campaign = str(created_id(run("campaigns", "create", "Berlin", "--timezone",
                                  "Europe/Berlin")))
    later = created_id(run("campaigns", "add-item", campaign, "mastodon", "Doors open",
                           "--at", "2030-01-09T10:00", "--account", "brand",
                           "--media", "https://example.com/door.png", "--alt", "A door"))
    sooner = created_id(run("campaigns", "add-item", campaign, "bluesky", "Teaser",
                            "--at", "2030-01-08T10:00+00:00", "--media", "poster.png"))

    code, out, _ = run("campaigns", "show", campaign, "--json")

    assert code == 0
    assert json.loads(out)["upcoming_items"] == [
        {"id": sooner, "status": "SCHEDULED", "platform": "bluesky", "account": None,
         "publish_at": "2030-01-08T11:00:00+01:00", "content": "Teaser",
         "media": [{"path": "poster.png", "alt": ""}]},
        {"id": later, "status": "SCHEDULED", "platform": "mastodon", "account": "brand",
         "publish_at": "2030-01-09T10:00:00+01:00", "content": "Doors open",
         "media": [{"url": "https://example.com/door.png", "alt": "A door"}]},
    ]
    assert "upcoming posts: 2" in run("campaigns", "show", campaign)[1]


def test_add_item_without_a_time_zone_offset_or_content_is_one_line_and_writes_nothing(
    run: Aol, aol_harness: ActionHarness
) -> None:
    campaign = str(created_id(run("campaigns", "create", "Spring launch")))
    before = aol_harness.row_counts()

    assert run("campaigns", "add-item", campaign, "mastodon", "Hi", "--at", "soon") == (
        1, "", "aol: error: --at 'soon' is not a time like 2030-01-08T10:00\n")
    assert run("campaigns", "add-item", campaign, "mastodon", " ", "--at",
               "2030-01-08T10:00") == (1, "", "aol: error: content is empty\n")
    assert aol_harness.row_counts() == before


def test_importing_items_adds_every_row_with_its_media(
    run: Aol, aol_harness: ActionHarness, tmp_path: Path
) -> None:
    campaign = str(created_id(run("campaigns", "create", "Berlin", "--timezone",
                                  "Europe/Berlin")))
    rows = write(tmp_path, "platform,publish_at,content,account,media,alt\n"
                           "mastodon,2030-01-08T10:00,Teaser,brand,a.png|b.png,First|Second\n"
                           "x,2030-01-09T12:30,Launch day,,,\n")

    code, out, err = run("campaigns", "import-items", campaign, rows)

    assert code == 0, err
    items = json.loads(run("campaigns", "show", campaign, "--json")[1])["upcoming_items"]
    assert out == f"imported 2 item(s): ids {items[0]['id']}, {items[1]['id']}\n"
    assert [(i["platform"], i["publish_at"], i["account"], i["media"]) for i in items] == [
        ("mastodon", "2030-01-08T10:00:00+01:00", "brand",
         [{"path": "a.png", "alt": "First"}, {"path": "b.png", "alt": "Second"}]),
        ("x", "2030-01-09T12:30:00+01:00", None, [])]


def test_one_refused_item_imports_no_item_and_each_refusal_is_named_by_line(
    run: Aol, aol_harness: ActionHarness, tmp_path: Path
) -> None:
    campaign = str(created_id(run("campaigns", "create", "Spring launch")))
    rows = write(tmp_path, "platform,publish_at,content,media,alt\n"
                           "mastodon,2030-01-08T10:00,fine,,\n"
                           "mastodon,next week,late,,\n"
                           ",2030-01-08T10:00,no platform,,\n"
                           "mastodon,2030-01-08T10:00,two alts,a.png,one|two\n")
    before = aol_harness.row_counts()

    code, out, err = run("campaigns", "import-items", campaign, rows)

    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{rows}:3: publish_at 'next week' is not a time like 2030-01-08T10:00",
        f"{rows}:4: platform is empty",
        f"{rows}:5: 2 alt text(s) for 1 media file(s)",
        "aol: error: nothing imported: 3 of 4 row(s) refused",
    ]
    assert aol_harness.row_counts() == before
