"""The plugin's schedules, ticked by the core's real scheduler on the kit's fixed clock: a
tick per active campaign, and each campaign's weekly summary on Monday 09:00 in its zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from aol_core import Action, scheduler
from aol_core.config import Settings
from aol_core.plugins import load_plugins
from aol_core.testing import ActionHarness, FixedClock

from aol_campaign_ops import create_campaign, record_metric
from aol_campaign_ops.schedules import finished_week
from aol_campaign_ops.testing import actions_of, as_dict

pytestmark = pytest.mark.usefixtures("aol_clock")


def campaign(harness: ActionHarness, name: str, **fields: object) -> int:
    with harness.session() as session:
        return create_campaign(session, name, **fields).id  # type: ignore[arg-type]


def run_schedules_until(harness: ActionHarness, clock: FixedClock, until: datetime) -> None:
    """Tick the schedules (the first tick starts them), move the clock to ``until``, tick
    again, and run everything that fell due, follow-ups included."""
    scheduler.tick(harness.engine, harness.registry)
    clock.set(until)
    scheduler.tick(harness.engine, harness.registry)
    while harness.run_due():
        pass


def payloads(harness: ActionHarness, action_type: str) -> list[dict[str, object]]:
    return [
        {k: v for k, v in as_dict(a.payload).items() if k != "idempotency_key"}
        for a in actions_of(harness, action_type)
    ]


def test_the_plugin_declares_a_quarter_hourly_tick_and_the_summary_schedule() -> None:
    [plugin] = load_plugins(Settings(plugins=("aol-campaign-ops",))).loaded
    schedules = {s.name: s for s in plugin.schedules}

    assert schedules["campaign-ops-tick"].every == timedelta(minutes=15)
    assert schedules["campaign-ops-tick"].action_type == "TICK_ACTIVE_CAMPAIGNS"
    assert schedules["campaign-ops-weekly-summaries"].action_type == "SUMMARIZE_FINISHED_WEEKS"


def test_the_tick_interval_is_set_in_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOL_CAMPAIGN_TICK_MINUTES", "5")
    [plugin] = load_plugins(Settings(plugins=("aol-campaign-ops",))).loaded

    tick = next(s for s in plugin.schedules if s.name == "campaign-ops-tick")
    assert tick.every == timedelta(minutes=5)


def test_a_bad_tick_interval_marks_the_plugin_broken_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AOL_CAMPAIGN_TICK_MINUTES", "soon")
    [plugin] = [p for p in load_plugins(Settings(plugins=("aol-campaign-ops",))).plugins
                if p.distribution == "aol-campaign-ops"]

    assert plugin.status == "broken"
    assert "AOL_CAMPAIGN_TICK_MINUTES='soon'" in (plugin.error or "")


def test_each_active_campaign_is_ticked_and_paused_or_finished_ones_are_not(
    aol_harness: ActionHarness, aol_clock: FixedClock
) -> None:
    active = campaign(aol_harness, "active")
    campaign(aol_harness, "paused", status="PAUSED")
    campaign(aol_harness, "ended", status="ENDED")
    campaign(aol_harness, "over by date", ends_on=date(2030, 1, 6))
    last_day = campaign(aol_harness, "last day in Tokyo", timezone="Asia/Tokyo",
                        ends_on=date(2030, 1, 7))

    run_schedules_until(aol_harness, aol_clock, aol_clock.now + timedelta(minutes=15))

    ticks = actions_of(aol_harness, "CAMPAIGN_TICK")
    assert sorted(as_dict(t.payload)["campaign_id"] for t in ticks) == [active, last_day]
    assert all(t.status == "SUCCESS" for t in ticks)


def test_a_slot_ticks_each_campaign_once_however_often_its_fan_out_runs(
    aol_harness: ActionHarness, aol_clock: FixedClock
) -> None:
    campaign(aol_harness, "active")
    run_schedules_until(aol_harness, aol_clock, aol_clock.now + timedelta(minutes=15))
    [fan_out] = actions_of(aol_harness, "TICK_ACTIVE_CAMPAIGNS")

    aol_harness.rerun(fan_out.id)

    assert len(actions_of(aol_harness, "CAMPAIGN_TICK")) == 1
    assert as_dict(aol_harness.action(fan_out.id).result)["already_enqueued"] == 1


def test_the_next_slot_ticks_again(aol_harness: ActionHarness, aol_clock: FixedClock) -> None:
    campaign(aol_harness, "active")
    run_schedules_until(aol_harness, aol_clock, aol_clock.now + timedelta(minutes=15))
    run_schedules_until(aol_harness, aol_clock, aol_clock.now + timedelta(minutes=15))

    assert len(actions_of(aol_harness, "CAMPAIGN_TICK")) == 2


@pytest.mark.parametrize(
    ("slot", "timezone", "week_start"),
    [
        ("2030-01-07T08:00:00+00:00", "Europe/Berlin", "2029-12-31"),  # Monday 09:00 there
        ("2030-01-07T07:45:00+00:00", "Europe/Berlin", "2029-12-24"),  # 08:45: not yet
        ("2030-01-07T13:45:00+00:00", "America/New_York", "2029-12-24"),  # 08:45 there
        ("2030-01-07T14:00:00+00:00", "America/New_York", "2029-12-31"),
        ("2030-01-10T12:00:00+00:00", "UTC", "2029-12-31"),  # any later day of the week
        ("2030-01-07T03:15:00+00:00", "Asia/Kathmandu", "2029-12-31"),  # 09:00 at +05:45
    ],
)
def test_the_finished_week_turns_over_on_monday_at_nine_in_the_campaigns_zone(
    slot: str, timezone: str, week_start: str
) -> None:
    assert finished_week(datetime.fromisoformat(slot), timezone).isoformat() == week_start


def test_the_summary_is_enqueued_at_monday_nine_in_each_campaigns_zone(
    aol_harness: ActionHarness, aol_clock: FixedClock
) -> None:
    aol_clock.set(datetime(2030, 1, 7, 7, 50, tzinfo=UTC))  # 08:50 in Berlin
    berlin = campaign(aol_harness, "Berlin", timezone="Europe/Berlin",
                      starts_on=date(2029, 12, 31))
    new_york = campaign(aol_harness, "New York", timezone="America/New_York",
                        starts_on=date(2029, 12, 31))

    run_schedules_until(aol_harness, aol_clock, datetime(2030, 1, 7, 8, 0, tzinfo=UTC))
    assert payloads(aol_harness, "WEEKLY_CAMPAIGN_SUMMARY") == [
        {"campaign_id": berlin, "week_start": "2029-12-31"}]

    run_schedules_until(aol_harness, aol_clock, datetime(2030, 1, 7, 14, 0, tzinfo=UTC))
    assert payloads(aol_harness, "WEEKLY_CAMPAIGN_SUMMARY") == [
        {"campaign_id": berlin, "week_start": "2029-12-31"},
        {"campaign_id": new_york, "week_start": "2029-12-31"}]
    summaries = actions_of(aol_harness, "WEEKLY_CAMPAIGN_SUMMARY")
    assert [s.status for s in summaries] == ["SUCCESS", "SUCCESS"]


def test_an_ended_campaign_gets_the_report_of_its_final_week_only(
    aol_harness: ActionHarness, aol_clock: FixedClock
) -> None:
    final = campaign(aol_harness, "ended last week", status="ENDED", ends_on=date(2030, 1, 2))
    campaign(aol_harness, "ended before", status="ENDED", ends_on=date(2029, 12, 30))
    campaign(aol_harness, "ended, no date", status="ENDED")
    campaign(aol_harness, "paused", status="PAUSED")
    campaign(aol_harness, "not started", starts_on=date(2030, 1, 7))

    run_schedules_until(aol_harness, aol_clock, aol_clock.now + timedelta(minutes=15))

    assert payloads(aol_harness, "WEEKLY_CAMPAIGN_SUMMARY") == [
        {"campaign_id": final, "week_start": "2029-12-31"}]


def test_the_weekly_numbers_are_counted_in_the_campaigns_zone(
    aol_harness: ActionHarness,
) -> None:
    berlin = campaign(aol_harness, "Berlin", timezone="Europe/Berlin")
    london = campaign(aol_harness, "London", timezone="Europe/London")
    sunday_night_in_london = datetime(2030, 1, 6, 23, 30, tzinfo=UTC)  # Monday 00:30 in Berlin
    with aol_harness.session() as session:
        for campaign_id in (berlin, london):
            record_metric(session, campaign_id, "x", clicks=7,
                          recorded_at=sunday_night_in_london)

    totals = {
        campaign_id: as_dict(aol_harness.run(
            "WEEKLY_CAMPAIGN_SUMMARY", {"campaign_id": campaign_id, "week_start": "2029-12-31"}
        ).result)["metrics"]
        for campaign_id in (berlin, london)
    }

    assert totals == {berlin: {}, london: {"x": {"entries": 1, "impressions": 0,
                                                 "engagement": 0, "clicks": 7}}}


def test_nothing_is_enqueued_in_proof_mode(aol_harness: ActionHarness) -> None:
    campaign(aol_harness, "active")

    action: Action = aol_harness.run(
        "TICK_ACTIVE_CAMPAIGNS", {"slot": "2030-01-07T09:15:00+00:00"}, proof_mode=True)

    assert as_dict(action.result)["would_enqueue"] == 1
    assert actions_of(aol_harness, "CAMPAIGN_TICK") == []
    assert [a.name for a in aol_harness.artifacts(action.id)] == ["ticks.json"]
