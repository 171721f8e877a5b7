"""Calendars as governed objects: generation, bucketing by the day row, alignment, closing periods,
the API and the portal. Runs on SQLite and PostgreSQL (the raw-SQL join test on PostgreSQL only)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from apps.kernel.errors import ConflictError, ForbiddenError
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DomainEvent
from apps.storage.calendars import alignment, selectors, services
from apps.storage.calendars.models import Calendar, CalendarPeriod, PeriodState
from apps.storage.models import GoldenDataPoint
from tests.factories import CalendarFactory, GoldenDataPointFactory, MembershipFactory

pytestmark = pytest.mark.django_db
D = date.fromisoformat
PROBLEM = "application/problem+json"
NRF_RULES = {"year_end_month": 1, "year_end_weekday": 5, "year_end_rule": "nearest", "year_naming": "start"}
RETAIL_445 = {"year_end_month": 12, "year_end_weekday": 5, "year_end_rule": "last"}


@pytest.fixture
def admin_a(tenant_a, member):
    return member(tenant_a, RoleChoices.ADMIN, username="admin-a")


@pytest.fixture
def admin_b(tenant_b, member):
    return member(tenant_b, RoleChoices.ADMIN, username="admin-b")


@pytest.fixture
def nrf(superuser):
    """The NRF 4-5-4 retail calendar as a platform calendar, FY2022..FY2024 generated."""
    calendar = services.calendar_create(actor=superuser, tenant=None, key="nrf", name="NRF 4-5-4",
                                        kind="retail_454", **NRF_RULES)  # fmt: skip
    services.calendar_generate(actor=superuser, calendar=calendar, from_year=2022, to_year=2024)
    return calendar


@pytest.fixture
def months(tenant_a, admin_a):
    calendar = services.calendar_create(actor=admin_a, tenant=tenant_a, key="months", name="Months", kind="gregorian")
    services.calendar_generate(actor=admin_a, calendar=calendar, from_year=2025, to_year=2027)
    return calendar


def period(calendar, label, level=None):
    rows = CalendarPeriod.objects.filter(calendar=calendar, label=label)
    return (rows.filter(level=level) if level else rows).get()


class TestGeneration:
    def test_it_writes_every_level_and_a_row_per_day(self, nrf):
        counts = {
            level: CalendarPeriod.objects.filter(calendar=nrf, level=level).count()
            for level in ("year", "half", "quarter", "period", "week")
        }
        assert counts == {"year": 3, "half": 6, "quarter": 12, "period": 36, "week": 52 + 53 + 52}
        assert CalendarPeriod.objects.filter(calendar=nrf, level="day").count() == 364 + 371 + 364
        nrf.refresh_from_db()
        assert (nrf.generated_from, nrf.generated_to) == (2022, 2024)

    def test_it_is_idempotent_and_keeps_row_ids(self, nrf, superuser):
        ids = set(CalendarPeriod.objects.filter(calendar=nrf).values_list("pk", flat=True))
        again = services.calendar_generate(actor=superuser, calendar=nrf, from_year=2022, to_year=2024)
        assert (again.created, again.updated, again.deleted, again.unchanged) == (0, 0, 0, len(ids))
        assert set(CalendarPeriod.objects.filter(calendar=nrf).values_list("pk", flat=True)) == ids

    def test_it_publishes_calendar_generated_and_records_the_years_in_the_audit_log(self, nrf):
        event = DomainEvent.objects.filter(type="calendar.generated").latest("occurred_at")
        assert event.payload["from_year"] == 2022 and event.payload["created"] > 1000
        assert LogEntry.objects.get_for_object(nrf).filter(changes__icontains="generated_to").exists()

    def test_generated_years_stay_one_unbroken_range(self, nrf, superuser):
        services.calendar_generate(actor=superuser, calendar=nrf, from_year=2025, to_year=2025)
        with pytest.raises(ValidationError, match="unbroken range"):
            services.calendar_generate(actor=superuser, calendar=nrf, from_year=2030, to_year=2031)
        nrf.refresh_from_db()
        assert (nrf.generated_from, nrf.generated_to) == (2022, 2025)

    def test_regeneration_is_refused_over_a_closed_period(self, nrf, superuser, tenant_a, admin_a):
        closed = period(nrf, "FY2023-P03")
        services.period_close(actor=admin_a, tenant=tenant_a, period=closed, reason="books done")
        with pytest.raises(ConflictError, match="closed periods") as refused:
            services.calendar_generate(actor=superuser, calendar=nrf, from_year=2023, to_year=2023)
        assert refused.value.extensions["closed_periods"] == ["FY2023-P03"]
        # years without a closed period still (re)generate
        services.calendar_generate(actor=superuser, calendar=nrf, from_year=2024, to_year=2025)

    def test_the_rules_are_fixed_once_periods_exist_until_they_are_discarded(self, months, admin_a, tenant_a):
        with pytest.raises(ConflictError, match="rules of 'months' are fixed"):
            services.calendar_update(actor=admin_a, calendar=months, fiscal_year_start_month=4)
        services.calendar_update(actor=admin_a, calendar=months, name="Calendar months")  # not a rule
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=period(months, "2026-01"))
        with pytest.raises(ConflictError):
            services.calendar_clear(actor=admin_a, calendar=months)
        services.period_reopen(actor=admin_a, tenant=tenant_a, period=period(months, "2026-01"), reason="oops")
        services.calendar_clear(actor=admin_a, calendar=months)
        assert not CalendarPeriod.objects.filter(calendar=months).exists()
        changed = services.calendar_update(actor=admin_a, calendar=months, fiscal_year_start_month=4)
        services.calendar_generate(actor=admin_a, calendar=changed, from_year=2027, to_year=2027)
        assert period(changed, "FY2027-P01").start == D("2026-04-01")

    def test_a_custom_calendar_generates_its_list_and_is_extended_by_appending(self, tenant_a, admin_a):
        rows = [{"label": "T1", "start": "2026-01-01", "end": "2026-04-30"},
                {"label": "T2", "start": "2026-05-01", "end": "2026-08-31"},
                {"label": "T3", "start": "2026-09-01", "end": "2026-12-31"}]  # fmt: skip
        calendar = services.calendar_create(actor=admin_a, tenant=tenant_a, key="terms", name="Terms", kind="custom",
                                            custom_periods=rows)  # fmt: skip
        first = services.calendar_generate(actor=admin_a, calendar=calendar)
        assert (first.from_year, first.to_year) == (2026, 2026)
        assert not CalendarPeriod.objects.filter(calendar=calendar, level__in=["week", "quarter", "half"]).exists()
        services.period_close(actor=admin_a, tenant=tenant_a, period=period(calendar, "T1"))
        longer = [*rows, {"label": "T1-27", "start": "2027-01-01", "end": "2027-04-30"}]
        calendar = services.calendar_update(actor=admin_a, calendar=calendar, custom_periods=longer)
        services.calendar_generate(actor=admin_a, calendar=calendar, from_year=2027, to_year=2027)
        assert period(calendar, "T1-27").index == 4
        # changing a generated year of the list without regenerating it is caught
        moved = [{**rows[0], "end": "2026-04-29"}, {**rows[1], "start": "2026-04-30"}, *longer[2:]]
        calendar = services.calendar_update(actor=admin_a, calendar=calendar, custom_periods=moved)
        with pytest.raises(ConflictError, match="no longer matches"):
            services.calendar_generate(actor=admin_a, calendar=calendar, from_year=2027, to_year=2027)
        with pytest.raises(ConflictError, match="closed periods"):
            services.calendar_generate(actor=admin_a, calendar=calendar, from_year=2026, to_year=2026)

    def test_a_bad_custom_list_is_refused_at_creation(self, tenant_a, admin_a):
        rows = [{"label": "A", "start": "2026-01-01", "end": "2026-01-31"},
                {"label": "B", "start": "2026-02-02", "end": "2026-02-28"}]  # fmt: skip
        with pytest.raises(ValidationError) as refused:
            services.calendar_create(actor=admin_a, tenant=tenant_a, key="x", name="X", kind="custom",
                                     custom_periods=rows)  # fmt: skip
        assert "custom_periods/1/start" in refused.value.message_dict
        assert not Calendar.objects.filter(key="x").exists()

    def test_only_superusers_change_platform_calendars(self, nrf, admin_a):
        with pytest.raises(ForbiddenError):
            services.calendar_generate(actor=admin_a, calendar=nrf, from_year=2025, to_year=2025)
        with pytest.raises(ForbiddenError):
            services.calendar_create(actor=admin_a, tenant=None, key="mine", name="Mine", kind="iso_week")
        with pytest.raises(ForbiddenError):
            services.calendar_update(actor=admin_a, calendar=nrf, name="Renamed")

    def test_one_default_per_tenant_and_the_platform_default_as_fallback(self, tenant_a, tenant_b, admin_a, nrf,
                                                                         superuser):  # fmt: skip
        services.calendar_update(actor=superuser, calendar=nrf, is_default=True)
        first = services.calendar_create(actor=admin_a, tenant=tenant_a, key="one", name="One", kind="gregorian",
                                         is_default=True)  # fmt: skip
        second = services.calendar_create(actor=admin_a, tenant=tenant_a, key="two", name="Two", kind="iso_week",
                                          is_default=True)  # fmt: skip
        first.refresh_from_db()
        assert not first.is_default
        assert selectors.calendar_default(tenant=tenant_a) == second
        assert selectors.calendar_default(tenant=tenant_b) == nrf

    def test_keys_are_unique_per_tenant_and_among_platform_calendars(self, tenant_a, tenant_b, admin_a, admin_b,
                                                                     nrf):  # fmt: skip
        services.calendar_create(actor=admin_a, tenant=tenant_a, key="fiscal", name="F", kind="gregorian")
        services.calendar_create(actor=admin_b, tenant=tenant_b, key="fiscal", name="F", kind="gregorian")
        services.calendar_create(actor=admin_a, tenant=tenant_a, key="nrf", name="Own NRF", kind="retail_454")
        with pytest.raises(ValidationError, match="already exists"):
            services.calendar_create(actor=admin_a, tenant=tenant_a, key="fiscal", name="F", kind="gregorian")


class TestDayRows:
    def test_a_day_row_carries_every_period_that_holds_it(self, nrf):
        day = CalendarPeriod.objects.get(calendar=nrf, level="day", start=D("2024-02-03"))
        assert (day.fiscal_year, day.week_label, day.period_label, day.quarter_label, day.half_label,
                day.year_label) == (2023, "FY2023-W53", "FY2023-P12", "FY2023-Q4", "FY2023-H2", "FY2023")  # fmt: skip
        for level in ("week", "period", "quarter", "half"):
            holder = CalendarPeriod.objects.get(calendar=nrf, level=level, index=getattr(day, f"{level}_index"))
            assert holder.start <= day.start <= holder.end
            assert holder.label == getattr(day, f"{level}_label")

    def test_periods_of_day_answers_with_two_queries(self, nrf, django_assert_num_queries):
        with django_assert_num_queries(2):
            found = alignment.periods_of_day(nrf, D("2023-03-14"))
        assert {level: p.label for level, p in found.items()} == {
            "year": "FY2023", "half": "FY2023-H1", "quarter": "FY2023-Q1", "period": "FY2023-P02",
            "week": "FY2023-W07", "day": "2023-03-14",
        }  # fmt: skip

    def test_a_date_outside_the_generated_years_has_no_period(self, nrf):
        assert alignment.period_for(nrf, D("2030-01-01"), "period") is None
        assert alignment.period_for(nrf, D("2023-03-14"), "period").label == "FY2023-P02"
        assert all(p is None for p in alignment.periods_of_day(nrf, D("2030-01-01")).values())

    def test_facts_bucket_by_joining_the_day_row(self, months, tenant_a):
        for when, value in (("2026-03-01", 10), ("2026-03-31", 5), ("2026-04-01", 7), ("2026-12-31", 1)):
            GoldenDataPointFactory(tenant=tenant_a, batch__source__contract__tenant=tenant_a,
                                   observed_at=datetime.fromisoformat(when).replace(tzinfo=UTC), value=Decimal(value))  # fmt: skip
        rows = selectors.with_buckets(GoldenDataPoint.objects.all(), calendar=months, date_field="observed_at",
                                      level="quarter", tzinfo=UTC)  # fmt: skip
        totals: dict[str, Decimal] = {}
        for label, value in rows.values_list("bucket_label", "value"):
            totals[label] = totals.get(label, 0) + value
        assert totals == {"2026-Q1": 15, "2026-Q2": 7, "2026-Q4": 1}

    @pytest.mark.postgres
    def test_a_generation_refreshes_the_period_tables_statistics(self, tenant_a, admin_a,
                                                                django_capture_on_commit_callbacks):  # fmt: skip
        calendar = services.calendar_create(actor=admin_a, tenant=tenant_a, key="weeks", name="Weeks", kind="iso_week")
        with django_capture_on_commit_callbacks(execute=True):
            services.calendar_generate(actor=admin_a, calendar=calendar, from_year=2025, to_year=2026)
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'storage_calendarperiod'")
            assert cursor.fetchone()[0] >= CalendarPeriod.objects.filter(calendar=calendar).count()

    @pytest.mark.postgres
    def test_the_raw_sql_join_buckets_every_level_at_once(self, months, tenant_a):
        for when in ("2026-02-27", "2026-02-28", "2026-03-02"):
            GoldenDataPointFactory(tenant=tenant_a, batch__source__contract__tenant=tenant_a,
                                   observed_at=datetime.fromisoformat(when).replace(tzinfo=UTC), value=Decimal(2))  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT d.period_label, d.quarter_label, d.year_label, SUM(g.value)
                FROM storage_goldendatapoint g
                JOIN storage_calendarperiod d
                  ON d.calendar_id = %s AND d.level = 'day' AND d.start = (g.observed_at AT TIME ZONE 'UTC')::date
                GROUP BY 1, 2, 3 ORDER BY 1
                """,
                [months.pk],
            )
            assert cursor.fetchall() == [("2026-02", "2026-Q1", "2026", 4), ("2026-03", "2026-Q1", "2026", 2)]


class TestAlignment:
    def test_the_previous_period_crosses_the_year_boundary(self, nrf):
        assert alignment.previous_period(period(nrf, "FY2024-P01")).label == "FY2023-P12"
        assert alignment.previous_period(period(nrf, "FY2024-W01")).label == "FY2023-W53"
        assert alignment.previous_period(period(nrf, "FY2022-P01")) is None  # FY2021 not generated

    def test_same_period_last_year_matches_by_number(self, nrf):
        assert alignment.same_period_last_year(period(nrf, "FY2024-W10")).label == "FY2023-W10"
        assert alignment.same_period_last_year(period(nrf, "FY2023-P12")).label == "FY2022-P12"
        assert alignment.same_period_last_year(period(nrf, "FY2024", "year")).label == "FY2023"

    def test_week_53_has_no_counterpart_and_the_comparison_says_so(self, nrf):
        comparison = alignment.compare_period(period(nrf, "FY2023-W53"))
        assert comparison.same_period_last_year is None
        assert comparison.previous.label == "FY2023-W52"
        assert "FY2022 has 52 weeks" in comparison.note

    def test_a_missing_year_is_named(self, nrf):
        comparison = alignment.compare_period(period(nrf, "FY2022-P05"))
        assert comparison.same_period_last_year is None
        assert comparison.note == "FY2021 is not generated in this calendar."

    def test_gregorian_days_match_by_date_and_29_february_has_none(self, superuser, tenant_a, admin_a):
        calendar = services.calendar_create(actor=admin_a, tenant=tenant_a, key="g", name="G", kind="gregorian")
        services.calendar_generate(actor=admin_a, calendar=calendar, from_year=2023, to_year=2024)
        assert alignment.same_period_last_year(period(calendar, "2024-03-01", "day")).label == "2023-03-01"
        assert alignment.same_period_last_year(period(calendar, "2024-02-29", "day")) is None

    def test_overlap_weights_between_4_4_5_periods_and_calendar_months_sum_to_one(self, tenant_a, admin_a, months):
        retail = services.calendar_create(actor=admin_a, tenant=tenant_a, key="r445", name="4-4-5", kind="retail_445",
                                          **RETAIL_445)  # fmt: skip
        services.calendar_generate(actor=admin_a, calendar=retail, from_year=2026, to_year=2026)
        table = alignment.overlaps(retail, "period", months, "period", D("2025-12-28"), D("2026-12-26"))
        by_a: dict[str, list] = {}
        for row in table:
            by_a.setdefault(row.period_a.label, []).append(row)
        assert len(by_a) == 12
        for label, rows in by_a.items():
            assert sum(r.days for r in rows) == rows[0].period_a.days, label
            assert sum(r.weight_of_a for r in rows) == pytest.approx(1), label
        p01 = [(r.period_b.label, r.days) for r in by_a["FY2026-P01"]]
        assert p01 == [("2025-12", 4), ("2026-01", 24)]  # 28 Dec 2025 .. 24 Jan 2026

    def test_overlap_of_two_periods(self, nrf, months):
        march = period(months, "2026-03")
        assert alignment.overlap(march, period(months, "2026-04")).days == 0
        assert alignment.overlap(march, march).weight_of_a == 1

    def test_overlaps_refuse_a_reversed_range_and_an_unknown_level(self, nrf, months):
        with pytest.raises(ValidationError):
            alignment.overlaps(nrf, "period", months, "period", D("2026-05-01"), D("2026-01-01"))
        with pytest.raises(ValidationError):
            alignment.overlaps(nrf, "fortnight", months, "period", D("2026-01-01"), D("2026-05-01"))


class TestPeriodStates:
    def test_soft_close_reopen_close(self, nrf, tenant_a, admin_a):
        p03 = period(nrf, "FY2023-P03")
        state = services.period_soft_close(actor=admin_a, tenant=tenant_a, period=p03, reason="first pass")
        assert state.state == "soft_closed" and state.changed_by == admin_a
        assert (
            services.period_reopen(actor=admin_a, tenant=tenant_a, period=p03, reason="late invoices").state == "open"
        )
        assert services.period_close(actor=admin_a, tenant=tenant_a, period=p03).state == "closed"
        events = list(
            DomainEvent.objects.filter(type__startswith="period.")
            .order_by("occurred_at")
            .values_list("type", "payload")
        )
        assert [t for t, _ in events] == ["period.soft_closed", "period.reopened", "period.closed"]
        assert events[-1][1]["label"] == "FY2023-P03" and events[-1][1]["previous_state"] == "open"
        assert DomainEvent.objects.filter(type="period.closed").get().tenant == tenant_a
        entries = LogEntry.objects.get_for_object(PeriodState.objects.get(period=p03))
        assert entries.count() == 3 and {e.actor for e in entries} == {admin_a}

    def test_a_closed_period_is_never_reopened_or_closed_again(self, nrf, tenant_a, admin_a):
        p03 = period(nrf, "FY2023-P03")
        services.period_close(actor=admin_a, tenant=tenant_a, period=p03)
        with pytest.raises(ConflictError, match="never reopened") as refused:
            services.period_reopen(actor=admin_a, tenant=tenant_a, period=p03)
        assert refused.value.extensions == {"state": "closed", "allowed_next": []}
        with pytest.raises(ConflictError):
            services.period_close(actor=admin_a, tenant=tenant_a, period=p03)
        with pytest.raises(ConflictError):
            services.period_soft_close(actor=admin_a, tenant=tenant_a, period=p03)
        assert DomainEvent.objects.filter(type__startswith="period.").count() == 1

    def test_an_open_period_is_not_reopened_and_a_soft_close_is_not_repeated(self, nrf, tenant_a, admin_a):
        p04 = period(nrf, "FY2023-P04")
        with pytest.raises(ConflictError, match="is already open"):
            services.period_reopen(actor=admin_a, tenant=tenant_a, period=p04)
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=p04)
        with pytest.raises(ConflictError, match="already soft-closed"):
            services.period_soft_close(actor=admin_a, tenant=tenant_a, period=p04)

    def test_a_day_is_closed_with_its_period_not_on_its_own(self, nrf, tenant_a, admin_a):
        with pytest.raises(ValidationError, match="close the period holding it"):
            services.period_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "2023-03-14"))

    def test_tenants_close_a_shared_calendar_on_their_own(self, nrf, tenant_a, tenant_b, admin_a, admin_b):
        p03 = period(nrf, "FY2023-P03")
        services.period_close(actor=admin_a, tenant=tenant_a, period=p03)
        assert selectors.period_state_of(tenant=tenant_a, period=p03) == "closed"
        assert selectors.period_state_of(tenant=tenant_b, period=p03) == "open"
        assert selectors.date_is_closed(tenant=tenant_a, calendar=nrf, day=D("2023-04-15"))
        assert not selectors.date_is_closed(tenant=tenant_b, calendar=nrf, day=D("2023-04-15"))
        services.period_soft_close(actor=admin_b, tenant=tenant_b, period=p03)

    def test_another_tenants_calendar_is_not_closed(self, months, tenant_b, admin_b):
        with pytest.raises(ValidationError, match="another tenant"):
            services.period_close(actor=admin_b, tenant=tenant_b, period=period(months, "2026-01"))


# --- the API ------------------------------------------------------------------------------------------
@pytest.fixture
def steward(tenant_a, token_client):
    return token_client(tenant_a, RoleChoices.STEWARD, scopes=["read", "write"])


@pytest.fixture
def tenant_admin(tenant_a, token_client, admin_a):
    return token_client(tenant_a, RoleChoices.ADMIN, user=admin_a)


def problem(response, status):
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM
    return response.json()


class TestCalendarsApi:
    def test_a_tenant_lists_its_own_and_the_platform_calendars(self, steward, nrf, months, tenant_b):
        CalendarFactory(tenant=tenant_b, key="theirs")
        body = steward.get("/api/v1/calendars/").json()
        assert {(c["key"], c["platform"]) for c in body["results"]} == {("nrf", True), ("months", False)}

    def test_a_steward_creates_and_generates_a_calendar(self, steward):
        created = steward.post("/api/v1/calendars/", {"key": "retail", "name": "Retail", "kind": "retail_445",
                                                      **RETAIL_445}, format="json")  # fmt: skip
        assert created.status_code == 201, created.json()
        assert created.json()["platform"] is False
        url = f"/api/v1/calendars/{created.json()['id']}/generate/"
        generated = steward.post(url, {"from_year": 2025, "to_year": 2026}, format="json")
        assert generated.status_code == 200, generated.json()
        assert generated.json()["created"] == 2 * (1 + 2 + 4 + 12) + 52 + 52 + 364 + 364
        assert steward.post(url, {"from_year": 2025, "to_year": 2026}, format="json").json()["created"] == 0

    def test_an_analyst_reads_but_does_not_create(self, tenant_a, token_client, months):
        analyst = token_client(tenant_a, RoleChoices.ANALYST, scopes=["read"])
        assert analyst.get(f"/api/v1/calendars/{months.pk}/").status_code == 200
        problem(analyst.post("/api/v1/calendars/", {"key": "x", "name": "X", "kind": "gregorian"}, format="json"), 403)

    def test_writes_on_a_platform_calendar_are_refused_with_403(self, steward, nrf):
        assert steward.get(f"/api/v1/calendars/{nrf.pk}/").status_code == 200
        body = problem(steward.patch(f"/api/v1/calendars/{nrf.pk}/", {"name": "Mine"}, format="json"), 403)
        assert body["type"] == "urn:aurum:problem:platform-calendar"
        problem(steward.post(f"/api/v1/calendars/{nrf.pk}/generate/", {"from_year": 2025, "to_year": 2025},
                             format="json"), 403)  # fmt: skip
        problem(steward.post("/api/v1/calendars/", {"key": "p", "name": "P", "kind": "iso_week", "platform": True},
                             format="json"), 403)  # fmt: skip
        nrf.refresh_from_db()
        assert (nrf.name, nrf.generated_to) == ("NRF 4-5-4", 2024)

    def test_a_superuser_creates_a_platform_calendar(self, tenant_a, token_client, superuser):
        MembershipFactory(tenant=tenant_a, user=superuser, role=RoleChoices.ADMIN)
        operator = token_client(tenant_a, user=superuser)
        response = operator.post("/api/v1/calendars/", {"key": "iso", "name": "ISO weeks", "kind": "iso_week",
                                                        "platform": True}, format="json")  # fmt: skip
        assert response.status_code == 201, response.json()
        assert Calendar.objects.get(key="iso").tenant is None

    def test_another_tenants_calendar_is_not_found(self, tenant_b, token_client, months):
        outsider = token_client(tenant_b, RoleChoices.ADMIN)
        for url in (f"/api/v1/calendars/{months.pk}/", f"/api/v1/calendars/{months.pk}/lookup/?date=2026-03-14",
                    f"/api/v1/calendars/{months.pk}/periods/"):  # fmt: skip
            problem(outsider.get(url), 404)
        problem(outsider.post(f"/api/v1/calendars/{months.pk}/generate/", {"from_year": 2028, "to_year": 2028},
                              format="json"), 404)  # fmt: skip

    def test_a_bad_custom_list_answers_a_located_problem(self, steward):
        rows = [{"label": "A", "start": "2026-01-01", "end": "2026-01-31"},
                {"label": "B", "start": "2026-02-03", "end": "2026-02-28"}]  # fmt: skip
        body = problem(steward.post("/api/v1/calendars/", {"key": "c", "name": "C", "kind": "custom",
                                                           "custom_periods": rows}, format="json"), 400)  # fmt: skip
        assert body["errors"][0]["pointer"] == "#/custom_periods/1/start"
        assert "Gap" in body["errors"][0]["detail"]

    def test_periods_by_level_and_range_paginated(self, steward, months):
        response = steward.get(f"/api/v1/calendars/{months.pk}/periods/",
                               {"level": "period", "from": "2026-02-15", "to": "2026-05-01", "page_size": 2})  # fmt: skip
        body = response.json()
        assert body["count"] == 4
        assert [p["label"] for p in body["results"]] == ["2026-02", "2026-03"]
        assert body["results"][0]["state"] == "open" and body["next"]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"from": "2026-05-01", "to": "2026-01-01"}, "to"),
            ({"from": "2026-02-30"}, "from"),
            ({"level": "fortnight"}, "level"),
        ],
    )
    def test_bad_period_filters_answer_400_problems(self, steward, months, query, field):
        body = problem(steward.get(f"/api/v1/calendars/{months.pk}/periods/", query), 400)
        assert body["errors"][0]["pointer"] == f"#/{field}"

    def test_lookup_gives_the_days_periods(self, steward, nrf):
        body = steward.get(f"/api/v1/calendars/{nrf.pk}/lookup/", {"date": "2024-02-03"}).json()
        assert {level: (body[level] or {}).get("label") for level in ("week", "period", "quarter", "half", "year")} == {
            "week": "FY2023-W53", "period": "FY2023-P12", "quarter": "FY2023-Q4", "half": "FY2023-H2",
            "year": "FY2023",
        }  # fmt: skip

    @pytest.mark.parametrize("query", [{"date": "2026-14-01"}, {"date": "yesterday"}, {}])
    def test_lookup_refuses_a_bad_date(self, steward, nrf, query):
        body = problem(steward.get(f"/api/v1/calendars/{nrf.pk}/lookup/", query), 400)
        assert body["type"] == "urn:aurum:problem:validation" and body["errors"][0]["pointer"] == "#/date"

    def test_overlap_table_between_two_calendars(self, steward, nrf, months):
        response = steward.get(f"/api/v1/calendars/{nrf.pk}/overlap/",
                               {"b": months.pk, "from": "2025-01-05", "to": "2025-02-01"})  # fmt: skip
        assert response.status_code == 200, response.json()
        rows = response.json()["rows"]
        assert {r["period_a"]["label"] for r in rows} == {"FY2024-P12"}  # 5 January .. 1 February 2025
        assert [(r["period_b"]["label"], r["days"]) for r in rows] == [("2025-01", 27), ("2025-02", 1)]
        assert sum(r["weight_of_a"] for r in rows) == pytest.approx(1)
        assert [r["weight_of_b"] for r in rows] == [pytest.approx(27 / 31), pytest.approx(1 / 28)]

    def test_overlap_with_an_invisible_calendar_is_refused(self, tenant_b, token_client, nrf, months):
        outsider = token_client(tenant_b, RoleChoices.ADMIN)
        body = problem(outsider.get(f"/api/v1/calendars/{nrf.pk}/overlap/",
                                    {"b": months.pk, "from": "2025-02-02", "to": "2025-05-03"}), 400)  # fmt: skip
        assert body["errors"][0]["pointer"] == "#/b"


class TestCalendarPeriodsApi:
    def test_compare_names_the_previous_and_last_years_period(self, steward, nrf):
        w53 = period(nrf, "FY2023-W53")
        body = steward.get(f"/api/v1/calendar-periods/{w53.pk}/compare/").json()
        assert body["previous"]["label"] == "FY2023-W52"
        assert body["same_period_last_year"] is None and "no counterpart" in body["note"]
        p12 = steward.get(f"/api/v1/calendar-periods/{period(nrf, 'FY2023-P12').pk}/compare/").json()
        assert p12["same_period_last_year"]["label"] == "FY2022-P12"

    def test_a_tenant_admin_closes_and_a_closed_period_does_not_reopen(self, tenant_admin, steward, nrf, tenant_a):
        p03 = period(nrf, "FY2023-P03")
        url = f"/api/v1/calendar-periods/{p03.pk}/"
        problem(steward.post(url + "close/", {}, format="json"), 403)  # the admin scope
        soft = tenant_admin.post(url + "soft-close/", {"reason": "first pass"}, format="json")
        assert soft.status_code == 200 and soft.json()["state"] == "soft_closed"
        assert tenant_admin.post(url + "reopen/", {}, format="json").json()["state"] == "open"
        assert tenant_admin.post(url + "close/", {"reason": "books done"}, format="json").json()["state"] == "closed"
        body = problem(tenant_admin.post(url + "reopen/", {}, format="json"), 409)
        assert body["type"] == "urn:aurum:problem:illegal-transition" and body["state"] == "closed"
        listed = steward.get("/api/v1/calendar-periods/", {"calendar": nrf.pk, "level": "period",
                                                           "fiscal_year": 2023}).json()  # fmt: skip
        assert {p["label"]: p["state"] for p in listed["results"]}["FY2023-P03"] == "closed"
        assert PeriodState.objects.get(period=p03).tenant == tenant_a

    def test_the_list_holds_platform_periods_but_not_another_tenants(self, steward, nrf, tenant_b, admin_b):
        theirs = services.calendar_create(actor=admin_b, tenant=tenant_b, key="b", name="B", kind="gregorian")
        services.calendar_generate(actor=admin_b, calendar=theirs, from_year=2026, to_year=2026)
        body = steward.get("/api/v1/calendar-periods/", {"level": "year", "page_size": 500}).json()
        assert {p["calendar"] for p in body["results"]} == {nrf.pk}

    def test_the_list_answers_in_the_same_number_of_queries_for_few_and_many(
        self, steward, nrf, django_assert_max_num_queries
    ):
        with django_assert_max_num_queries(12) as few:
            steward.get("/api/v1/calendar-periods/", {"calendar": nrf.pk, "level": "year"})
        with django_assert_max_num_queries(len(few.captured_queries)):
            steward.get("/api/v1/calendar-periods/", {"calendar": nrf.pk, "level": "week", "page_size": 100})


# --- the portal ---------------------------------------------------------------------------------------
@pytest.fixture
def portal(admin_a):
    client = Client()
    client.force_login(admin_a)
    return client


class TestPortal:
    def test_the_calendar_list_shows_own_and_platform_calendars_with_closed_counts(self, portal, nrf, months,
                                                                                   tenant_a, admin_a):  # fmt: skip
        services.period_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2023-P01"))
        response = portal.get(reverse("admin:storage_calendar_changelist"))
        assert response.status_code == 200
        shown = {c.key: c.closed_total for c in response.context["cl"].result_list}
        assert shown == {"nrf": 1, "months": 0}

    def test_a_platform_calendar_is_read_only_to_a_tenant_admin(self, portal, nrf):
        response = portal.get(reverse("admin:storage_calendar_change", args=[nrf.pk]))
        assert response.status_code == 200
        assert not response.context["has_change_permission"]

    def test_the_change_page_lists_the_closed_periods(self, portal, months, tenant_a, admin_a):
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=period(months, "2026-02"))
        page = portal.get(reverse("admin:storage_calendar_change", args=[months.pk])).content.decode()
        assert "2026-02 (2026-02-01..2026-02-28)" in page and 'data-state="soft_closed"' in page

    def test_a_tenant_admin_adds_a_calendar_through_the_form(self, portal, tenant_a):
        response = portal.post(reverse("admin:storage_calendar_add"), {
            "key": "weeks", "name": "Weeks", "kind": "iso_week", "year_end_month": 12, "year_end_weekday": 5,
            "year_end_rule": "last", "week53_placement": "last_month", "year_naming": "end",
            "fiscal_year_start_month": 1, "custom_periods": "[]",
        })  # fmt: skip
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert Calendar.objects.get(key="weeks").tenant == tenant_a

    def test_a_bad_rule_is_a_form_error(self, portal):
        response = portal.post(reverse("admin:storage_calendar_add"), {
            "key": "odd", "name": "Odd", "kind": "custom", "year_end_month": 12, "year_end_weekday": 5,
            "year_end_rule": "last", "week53_placement": "last_month", "year_naming": "end",
            "fiscal_year_start_month": 1, "custom_periods": '[{"label": "A", "start": "2026-02-01", "end": "2026-01-01"}]',
        })  # fmt: skip
        assert response.status_code == 200
        assert "before it starts" in str(response.context["adminform"].form.errors)
        assert not Calendar.objects.filter(key="odd").exists()

    def test_the_generate_action_asks_for_years_then_generates(self, portal, tenant_a, admin_a):
        calendar = services.calendar_create(actor=admin_a, tenant=tenant_a, key="m", name="M", kind="gregorian")
        url = reverse("admin:storage_calendar_changelist")
        asked = portal.post(url, {"action": "generate_periods", "_selected_action": [calendar.pk], "index": 0})
        assert asked.status_code == 200 and "Generate calendar periods" in asked.content.decode()
        done = portal.post(url, {"action": "generate_periods", "_selected_action": [calendar.pk], "apply": "Generate",
                                 "from_year": 2026, "to_year": 2027}, follow=True)  # fmt: skip
        assert "FY2026–FY2027 generated" in done.content.decode()
        calendar.refresh_from_db()
        assert (calendar.generated_from, calendar.generated_to) == (2026, 2027)

    def test_period_actions_close_for_the_tenant(self, portal, months, tenant_a):
        march = period(months, "2026-03")
        url = reverse("admin:storage_calendarperiod_changelist")
        asked = portal.post(url, {"action": "close_selected", "_selected_action": [march.pk], "index": 0})
        assert asked.status_code == 200 and "Close periods for good" in asked.content.decode()
        assert "2026-03 (period, 2026-03-01..2026-03-31" in asked.content.decode()
        assert selectors.period_state_of(tenant=tenant_a, period=march) == "open"  # not before it is confirmed
        portal.post(url, {"action": "close_selected", "_selected_action": [march.pk], "index": 0, "apply": "1",
                          "reason": "March books signed off"})  # fmt: skip
        assert selectors.period_state_of(tenant=tenant_a, period=march) == "closed"
        assert PeriodState.objects.get(period=march, tenant=tenant_a).reason == "March books signed off"
        response = portal.post(url, {"action": "reopen_selected", "_selected_action": [march.pk], "index": 0,
                                     "apply": "1", "reason": ""}, follow=True)  # fmt: skip
        assert "never reopened" in response.content.decode()
        listed = portal.get(url, {"calendar": months.pk, "state": "closed", "level__exact": "period"})
        assert [p.label for p in listed.context["cl"].result_list] == ["2026-03"]
        days = portal.get(url, {"calendar": months.pk, "state": "closed", "level__exact": "day"})
        assert days.context["cl"].result_count == 31  # closed with their period

    def test_a_steward_sees_periods_but_cannot_close_them(self, tenant_a, member, months):
        client = Client()
        client.force_login(member(tenant_a, RoleChoices.STEWARD))
        response = client.get(reverse("admin:storage_calendarperiod_changelist"))
        assert response.status_code == 200
        action_form = response.context["action_form"]
        actions = [name for name, _ in action_form.fields["action"].choices if name] if action_form else []
        assert not {"close_selected", "soft_close_selected", "reopen_selected"} & set(actions)


# --- closing through the periods that hold a period; what the KPI work reads -------------------------
class TestClosedThroughHolders:
    def test_closing_a_quarter_closes_its_months_weeks_and_days(self, nrf, tenant_a, tenant_b, admin_a):
        q1 = period(nrf, "FY2023-Q1")
        services.period_close(actor=admin_a, tenant=tenant_a, period=q1, reason="Q1 signed off")
        for label, level in (("FY2023-P02", "period"), ("FY2023-W05", "week"), ("2023-03-14", "day")):
            held = period(nrf, label, level)
            assert selectors.period_state_of(tenant=tenant_a, period=held) == "open"  # its own row: none
            assert selectors.effective_state_of(tenant=tenant_a, period=held) == "closed"
            assert selectors.period_is_closed(tenant=tenant_a, period=held)
            assert not selectors.period_is_closed(tenant=tenant_b, period=held)
        assert not selectors.period_is_closed(tenant=tenant_a, period=period(nrf, "FY2023-P04"))
        assert not selectors.period_is_closed(tenant=tenant_a, period=period(nrf, "FY2023-H1", "half"))  # partly
        states = dict(selectors.with_state(CalendarPeriod.objects.filter(calendar=nrf, fiscal_year=2023,
                                                                         level="period"), tenant=tenant_a)
                      .values_list("label", "state"))  # fmt: skip
        assert [label for label, state in sorted(states.items()) if state == "closed"] == [
            "FY2023-P01", "FY2023-P02", "FY2023-P03"
        ]  # fmt: skip
        assert set(states.values()) == {"closed", "open"}

    def test_a_period_inside_a_closed_one_refuses_every_transition(self, nrf, tenant_a, admin_a):
        services.period_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2023-Q1"))
        p02 = period(nrf, "FY2023-P02")
        for service in (services.period_soft_close, services.period_close, services.period_reopen):
            with pytest.raises(ConflictError, match="lies inside FY2023-Q1, which is closed") as refused:
                service(actor=admin_a, tenant=tenant_a, period=p02)
            assert refused.value.extensions["held_by"] == "FY2023-Q1"
        assert not PeriodState.objects.filter(period=p02).exists()
        # the closed quarter's neighbours and holders still move
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2023-P04"))
        services.period_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2023", "year"))

    def test_a_period_inside_a_soft_closed_one_reopens_only_after_it(self, nrf, tenant_a, admin_a):
        q2, p05 = period(nrf, "FY2023-Q2"), period(nrf, "FY2023-P05")
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=q2)
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=p05)
        assert selectors.effective_state_of(tenant=tenant_a, period=period(nrf, "FY2023-P04")) == "soft_closed"
        with pytest.raises(ConflictError, match="reopen FY2023-Q2 first"):
            services.period_reopen(actor=admin_a, tenant=tenant_a, period=p05)
        services.period_reopen(actor=admin_a, tenant=tenant_a, period=q2)
        services.period_reopen(actor=admin_a, tenant=tenant_a, period=p05)
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=q2)
        services.period_close(actor=admin_a, tenant=tenant_a, period=p05)  # closing inside a soft-close is fine
        assert selectors.effective_state_of(tenant=tenant_a, period=p05) == "closed"

    def test_date_is_closed_is_one_query_and_exact_at_the_edges(self, nrf, tenant_a, admin_a,
                                                                django_assert_num_queries):  # fmt: skip
        services.period_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2023-P12"))  # 31 Dec..3 Feb
        with django_assert_num_queries(1):
            assert selectors.date_is_closed(tenant=tenant_a, calendar=nrf, day=D("2023-12-31"))
        assert selectors.date_is_closed(tenant=tenant_a, calendar=nrf, day=D("2024-02-03"))
        assert not selectors.date_is_closed(tenant=tenant_a, calendar=nrf, day=D("2023-12-30"))
        assert not selectors.date_is_closed(tenant=tenant_a, calendar=nrf, day=D("2024-02-04"))
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2024-P01"))
        assert not selectors.date_is_closed(tenant=tenant_a, calendar=nrf, day=D("2024-02-04"))  # soft is not closed

    def test_with_closed_flags_the_facts_that_land_in_closed_periods_in_one_query(
        self, months, tenant_a, admin_a, django_assert_num_queries
    ):
        services.period_close(actor=admin_a, tenant=tenant_a, period=period(months, "2026-03"))
        for when in ("2026-02-28T23:30:00", "2026-03-01T00:00:00", "2026-03-31T23:59:00", "2026-04-01T00:00:00"):
            GoldenDataPointFactory(tenant=tenant_a, batch__source__contract__tenant=tenant_a,
                                   observed_at=datetime.fromisoformat(when).replace(tzinfo=UTC), value=Decimal(1))  # fmt: skip
        rows = selectors.with_closed(GoldenDataPoint.objects.order_by("observed_at"), tenant=tenant_a,
                                     calendar=months, date_field="observed_at", tzinfo=UTC)  # fmt: skip
        rows = selectors.with_buckets(rows, calendar=months, date_field="observed_at", level="period", tzinfo=UTC)
        with django_assert_num_queries(1):
            flags = list(rows.values_list("bucket_label", "in_closed_period"))
        assert flags == [("2026-02", False), ("2026-03", True), ("2026-03", True), ("2026-04", False)]

    def test_period_closed_is_written_in_the_closing_transaction(self, nrf, tenant_a, admin_a):
        p03 = period(nrf, "FY2023-P03")

        def close_then_fail() -> None:
            with transaction.atomic():
                services.period_close(actor=admin_a, tenant=tenant_a, period=p03)
                assert DomainEvent.objects.filter(type="period.closed", payload__label="FY2023-P03").exists()
                raise RuntimeError("the caller's transaction fails after the close")

        with pytest.raises(RuntimeError):
            close_then_fail()
        assert not PeriodState.objects.filter(period=p03).exists()
        assert not DomainEvent.objects.filter(type="period.closed").exists()
        services.period_close(actor=admin_a, tenant=tenant_a, period=p03, reason="books done")
        event = DomainEvent.objects.get(type="period.closed")
        assert event.payload == {
            "period": p03.pk, "calendar": nrf.pk, "calendar_key": "nrf", "level": "period", "label": "FY2023-P03",
            "start": "2023-04-02", "end": "2023-04-29", "fiscal_year": 2023, "state": "closed",
            "previous_state": "open", "reason": "books done",
        }  # fmt: skip

    def test_closed_periods_lists_only_what_the_tenant_closed_itself(self, nrf, tenant_a, admin_a):
        services.period_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2023-Q1"))
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2023-P04"))
        assert [(p.label, p.state) for p in selectors.closed_periods(tenant=tenant_a, calendar=nrf)] == [
            ("FY2023-Q1", "closed")
        ]
        both = selectors.closed_periods(tenant=tenant_a, calendar=nrf, soft=True).order_by("start")
        assert [(p.label, p.state) for p in both] == [("FY2023-Q1", "closed"), ("FY2023-P04", "soft_closed")]


class TestPeriodFiltersAndStateApi:
    def test_periods_by_label_and_state(self, steward, tenant_a, admin_a, nrf):
        services.period_close(actor=admin_a, tenant=tenant_a, period=period(nrf, "FY2023-Q1"))
        by_label = steward.get("/api/v1/calendar-periods/", {"calendar": nrf.pk, "label": "FY2023-P03"}).json()
        assert [(p["label"], p["state"]) for p in by_label["results"]] == [("FY2023-P03", "closed")]
        closed = steward.get(f"/api/v1/calendars/{nrf.pk}/periods/", {"state": "closed", "level": "period"}).json()
        assert [p["label"] for p in closed["results"]] == ["FY2023-P01", "FY2023-P02", "FY2023-P03"]
        day = steward.get("/api/v1/calendar-periods/", {"calendar": nrf.pk, "level": "day", "from": "2023-03-14",
                                                        "to": "2023-03-14"}).json()  # fmt: skip
        assert day["results"][0]["state"] == "closed"

    def test_a_bad_state_filter_is_a_problem(self, steward, nrf):
        body = problem(steward.get("/api/v1/calendar-periods/", {"state": "frozen"}), 400)
        assert body["errors"][0]["pointer"] == "#/state"

    def test_closing_a_month_of_a_closed_quarter_answers_409_naming_the_quarter(self, tenant_admin, nrf):
        q1 = period(nrf, "FY2023-Q1")
        assert tenant_admin.post(f"/api/v1/calendar-periods/{q1.pk}/close/", {}, format="json").status_code == 200
        body = problem(tenant_admin.post(f"/api/v1/calendar-periods/{period(nrf, 'FY2023-P02').pk}/soft-close/",
                                         {}, format="json"), 409)  # fmt: skip
        assert (body["type"], body["held_by"], body["state"]) == ("urn:aurum:problem:illegal-transition",
                                                                  "FY2023-Q1", "closed")  # fmt: skip

    def test_calendars_by_key(self, steward, nrf, months):
        body = steward.get("/api/v1/calendars/", {"key": "months"}).json()
        assert [c["key"] for c in body["results"]] == ["months"]


class TestPortalForms:
    def test_months_are_chosen_by_name(self, portal):
        page = portal.get(reverse("admin:storage_calendar_add")).content.decode()
        assert '<option value="1">January</option>' in page and "53rd week goes to" in page

    def test_reopening_asks_for_a_reason_and_keeps_it(self, portal, months, tenant_a, admin_a):
        february = period(months, "2026-02")
        services.period_soft_close(actor=admin_a, tenant=tenant_a, period=february)
        url = reverse("admin:storage_calendarperiod_changelist")
        asked = portal.post(url, {"action": "reopen_selected", "_selected_action": [february.pk], "index": 0})
        assert "Reopen soft-closed periods" in asked.content.decode()
        done = portal.post(url, {"action": "reopen_selected", "_selected_action": [february.pk], "index": 0,
                                 "apply": "1", "reason": "Late supplier invoices"}, follow=True)  # fmt: skip
        assert "1 period reopened." in done.content.decode()
        state = PeriodState.objects.get(period=february, tenant=tenant_a)
        assert (state.state, state.reason) == ("open", "Late supplier invoices")

    def test_a_too_long_reason_is_a_form_error(self, portal, months, tenant_a):
        march = period(months, "2026-03")
        url = reverse("admin:storage_calendarperiod_changelist")
        response = portal.post(url, {"action": "close_selected", "_selected_action": [march.pk], "index": 0,
                                     "apply": "1", "reason": "x" * 2001})  # fmt: skip
        assert response.status_code == 200 and "at most 2000 characters" in response.content.decode()
        assert selectors.period_state_of(tenant=tenant_a, period=march) == "open"


class TestDemoCalendars:
    def test_seed_makes_a_platform_gregorian_and_acmes_4_4_5_calendar_once(self):
        from io import StringIO

        from django.core.management import call_command

        from apps.host.models import Tenant

        call_command("seed_demo", stdout=StringIO())
        platform = Calendar.objects.get(tenant__isnull=True, key="gregorian")
        acme = Calendar.objects.get(tenant__slug="acme", key="retail-445")
        assert (platform.kind, platform.is_default, platform.generated_from, platform.generated_to) == (
            "gregorian", True, 2024, 2028)  # fmt: skip
        assert (acme.kind, acme.is_default, acme.generated_from, acme.generated_to) == ("retail_445", True, 2024, 2028)
        assert selectors.calendar_default(tenant=acme.tenant) == acme
        assert selectors.calendar_default(tenant=Tenant.objects.get(slug="globex")) == platform
        # NRF's year end, 4-4-5 months: FY2024 runs 4 February 2024 .. 1 February 2025
        assert (period(acme, "FY2024-P01").start, period(acme, "FY2024", "year").end) == (D("2024-02-04"),
                                                                                         D("2025-02-01"))  # fmt: skip
        assert weeks_of(acme, 2024) == [4, 4, 5] * 4 and weeks_of(acme, 2028) == [4, 4, 5] * 3 + [4, 4, 6]
        rows, events = CalendarPeriod.objects.count(), DomainEvent.objects.count()
        call_command("seed_demo", stdout=StringIO())
        assert (CalendarPeriod.objects.count(), DomainEvent.objects.count()) == (rows, events)


def weeks_of(calendar, fiscal_year):
    rows = CalendarPeriod.objects.filter(calendar=calendar, level="period", fiscal_year=fiscal_year).order_by("start")
    return [p.days // 7 for p in rows]
