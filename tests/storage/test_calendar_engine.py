"""The calendar engine against known answers: ISO 8601 weeks, 52/53-week retail years (NRF),
Gregorian fiscal years, custom lists; and the property every kind must have: each level tiles
its fiscal year exactly, and every day names the periods that hold it."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from apps.storage.calendars.engine import (
    CalendarRuleError,
    CalendarRules,
    custom_spans,
    fiscal_year_bounds,
    fiscal_year_of,
    generate,
    iso_week_of,
    iso_weeks_in_year,
    year_end_date,
)

D = date.fromisoformat
NRF = CalendarRules("retail_454", year_end_month=1, year_end_weekday=5, year_end_rule="nearest", year_naming="start")
LAST_SATURDAY_OF_DECEMBER = CalendarRules("retail_445", year_end_month=12, year_end_weekday=5, year_end_rule="last")
NEAREST_SATURDAY_TO_DECEMBER_END = CalendarRules(
    "retail_445", year_end_month=12, year_end_weekday=5, year_end_rule="nearest"
)
ISO = CalendarRules("iso_week")
APRIL_TO_MARCH = CalendarRules("gregorian", fiscal_year_start_month=4)


def spans_of(rules, year, level):
    return [s for s in generate(rules, year, year) if s.level == level]


def weeks_per_period(rules, year):
    return [s.days // 7 for s in spans_of(rules, year, "period")]


class TestIsoWeeks:
    @pytest.mark.parametrize(
        ("day", "expected"),
        [
            ("2021-01-01", (2020, 53, 5)),  # STANDARDS.md: 2021-01-01 is 2020-W53-5
            ("2020-12-31", (2020, 53, 4)),
            ("2021-01-03", (2020, 53, 7)),
            ("2021-01-04", (2021, 1, 1)),
            ("2019-12-30", (2020, 1, 1)),  # ISO 2020 starts in December 2019
            ("2018-12-31", (2019, 1, 1)),
            ("2016-01-03", (2015, 53, 7)),
            ("2010-01-03", (2009, 53, 7)),
            ("2008-12-29", (2009, 1, 1)),
            ("2024-12-30", (2025, 1, 1)),
            ("2026-01-01", (2026, 1, 4)),  # a Thursday: week 1 of its own year
            ("2026-12-31", (2026, 53, 4)),
            ("2027-01-03", (2026, 53, 7)),
            ("2027-01-04", (2027, 1, 1)),
        ],
    )
    def test_days_around_new_year_fall_in_the_right_iso_week(self, day, expected):
        assert iso_week_of(D(day)) == expected

    def test_the_53_week_years_between_2000_and_2040_are_the_known_ones(self):
        assert [y for y in range(2000, 2041) if iso_weeks_in_year(y) == 53] == [2004, 2009, 2015, 2020, 2026, 2032,
                                                                               2037]  # fmt: skip

    def test_week_one_always_holds_4_january(self):
        for year in range(1990, 2060):
            assert iso_week_of(date(year, 1, 4))[:2] == (year, 1)

    def test_it_agrees_with_the_standard_library_for_sixty_years_of_days(self):
        day = date(1990, 1, 1)
        while day < date(2050, 1, 1):
            assert iso_week_of(day) == tuple(day.isocalendar())
            day += timedelta(days=1)

    def test_an_iso_calendar_generates_2020_with_53_weeks_and_its_own_bounds(self):
        (year,) = spans_of(ISO, 2020, "year")
        weeks = spans_of(ISO, 2020, "week")
        assert (year.label, year.start, year.end) == ("2020", D("2019-12-30"), D("2021-01-03"))
        assert len(weeks) == 53
        assert (weeks[0].label, weeks[-1].label) == ("2020-W01", "2020-W53")
        assert len(spans_of(ISO, 2026, "week")) == 53
        assert len(spans_of(ISO, 2021, "week")) == 52

    def test_the_day_row_of_2021_01_01_belongs_to_2020_w53(self):
        (day,) = [s for s in generate(ISO, 2020, 2020) if s.level == "day" and s.start == D("2021-01-01")]
        assert (day.fiscal_year, day.year_label, day.week_label) == (2020, "2020", "2020-W53")
        assert fiscal_year_of(ISO, D("2021-01-01")) == 2020


class TestRetailYears:
    def test_nrf_fy2023_runs_from_29_january_2023_to_3_february_2024_with_53_weeks(self):
        assert fiscal_year_bounds(NRF, 2023) == (D("2023-01-29"), D("2024-02-03"))
        assert len(spans_of(NRF, 2023, "week")) == 53
        assert spans_of(NRF, 2023, "year")[0].label == "FY2023"  # named after the year it starts in

    @pytest.mark.parametrize("year", [2000, 2006, 2012, 2017, 2023, 2028])
    def test_nrf_53_week_years(self, year):
        start, end = fiscal_year_bounds(NRF, year)
        assert (end - start).days + 1 == 371
        assert end.weekday() == 5  # a Saturday

    def test_nrf_has_no_other_53_week_years_from_2000_to_2030(self):
        long_years = [y for y in range(2000, 2031) if len(spans_of(NRF, y, "week")) == 53]
        assert long_years == [2000, 2006, 2012, 2017, 2023, 2028]

    def test_nrf_fy2024_has_52_weeks(self):
        assert fiscal_year_bounds(NRF, 2024) == (D("2024-02-04"), D("2025-02-01"))
        assert len(spans_of(NRF, 2024, "week")) == 52

    def test_nrf_months_are_4_5_4_and_the_53rd_week_goes_to_the_last_month(self):
        assert weeks_per_period(NRF, 2024) == [4, 5, 4] * 4
        assert weeks_per_period(NRF, 2023) == [4, 5, 4] * 3 + [4, 5, 5]
        p12 = spans_of(NRF, 2023, "period")[-1]
        assert (p12.label, p12.start, p12.end) == ("FY2023-P12", D("2023-12-31"), D("2024-02-03"))

    def test_4_4_5_and_5_4_4_split_every_quarter_the_same_way(self):
        assert weeks_per_period(LAST_SATURDAY_OF_DECEMBER, 2025) == [4, 4, 5] * 4
        rules = CalendarRules("retail_544", year_end_month=12, year_end_weekday=5)
        assert weeks_per_period(rules, 2025) == [5, 4, 4] * 4

    def test_a_4_4_5_year_of_52_weeks(self):
        rules = LAST_SATURDAY_OF_DECEMBER
        assert fiscal_year_bounds(rules, 2025) == (D("2024-12-29"), D("2025-12-27"))
        quarters = spans_of(rules, 2025, "quarter")
        assert [(q.label, q.start, q.end) for q in quarters] == [
            ("FY2025-Q1", D("2024-12-29"), D("2025-03-29")),
            ("FY2025-Q2", D("2025-03-30"), D("2025-06-28")),
            ("FY2025-Q3", D("2025-06-29"), D("2025-09-27")),
            ("FY2025-Q4", D("2025-09-28"), D("2025-12-27")),
        ]
        assert sum(q.days for q in quarters) == 364

    def test_a_4_4_5_year_of_53_weeks_puts_the_extra_week_in_the_last_month(self):
        rules = LAST_SATURDAY_OF_DECEMBER
        assert fiscal_year_bounds(rules, 2022) == (D("2021-12-26"), D("2022-12-31"))
        assert weeks_per_period(rules, 2022) == [4, 4, 5] * 3 + [4, 4, 6]
        assert spans_of(rules, 2022, "quarter")[-1].days == 14 * 7

    def test_the_53rd_week_may_go_to_the_first_month_instead(self):
        rules = CalendarRules("retail_445", year_end_month=12, year_end_weekday=5, week53_placement="first_month")
        assert weeks_per_period(rules, 2022) == [5, 4, 5] + [4, 4, 5] * 3

    def test_last_and_nearest_year_end_rules_differ_when_the_month_ends_midweek(self):
        # 31 December 2025 is a Wednesday: the last Saturday is the 27th, the nearest one 3 January 2026.
        assert year_end_date(2025, 12, 5, "last") == D("2025-12-27")
        assert year_end_date(2025, 12, 5, "nearest") == D("2026-01-03")
        assert fiscal_year_bounds(LAST_SATURDAY_OF_DECEMBER, 2025)[1] == D("2025-12-27")
        assert fiscal_year_bounds(NEAREST_SATURDAY_TO_DECEMBER_END, 2025) == (D("2024-12-29"), D("2026-01-03"))
        assert len(spans_of(NEAREST_SATURDAY_TO_DECEMBER_END, 2025, "week")) == 53
        # ...and agree when it ends on the weekday itself (31 December 2022 is a Saturday).
        assert year_end_date(2022, 12, 5, "last") == year_end_date(2022, 12, 5, "nearest") == D("2022-12-31")

    def test_nearest_never_looks_more_than_three_days_away(self):
        for year in range(2000, 2040):
            for weekday in range(7):
                end = year_end_date(year, 1, weekday, "nearest")
                assert end.weekday() == weekday
                assert abs((end - D(f"{year}-01-31")).days) <= 3

    def test_a_last_saturday_of_september_year_with_the_extra_week_in_q1(self):
        # Apple's fiscal calendar: FY2023 (53 weeks) ended 30 September 2023, its Q1 (14 weeks) on 31 December 2022.
        rules = CalendarRules("retail_445", year_end_month=9, year_end_weekday=5, week53_placement="first_month")
        assert fiscal_year_bounds(rules, 2022)[1] == D("2022-09-24")
        assert fiscal_year_bounds(rules, 2023) == (D("2022-09-25"), D("2023-09-30"))
        assert spans_of(rules, 2023, "quarter")[0].end == D("2022-12-31")
        assert spans_of(rules, 2024, "quarter")[0].end == D("2023-12-30")
        assert fiscal_year_bounds(rules, 2024)[1] == D("2024-09-28")

    def test_naming_after_the_start_or_the_end_names_the_same_days_differently(self):
        by_end = CalendarRules("retail_454", year_end_month=1, year_end_weekday=5, year_end_rule="nearest")
        assert fiscal_year_bounds(by_end, 2024) == fiscal_year_bounds(NRF, 2023)
        assert fiscal_year_of(by_end, D("2023-06-01")) == 2024
        assert fiscal_year_of(NRF, D("2023-06-01")) == 2023


class TestGregorian:
    def test_an_april_start_names_the_year_after_its_end(self):
        (year,) = spans_of(APRIL_TO_MARCH, 2027, "year")
        assert (year.label, year.start, year.end) == ("FY2027", D("2026-04-01"), D("2027-03-31"))
        periods = spans_of(APRIL_TO_MARCH, 2027, "period")
        assert (periods[0].label, periods[0].start, periods[0].end) == ("FY2027-P01", D("2026-04-01"), D("2026-04-30"))
        assert (periods[-1].start, periods[-1].end) == (D("2027-03-01"), D("2027-03-31"))
        q4 = spans_of(APRIL_TO_MARCH, 2027, "quarter")[-1]
        assert (q4.label, q4.start, q4.end) == ("FY2027-Q4", D("2027-01-01"), D("2027-03-31"))
        assert fiscal_year_of(APRIL_TO_MARCH, D("2026-04-01")) == 2027
        assert fiscal_year_of(APRIL_TO_MARCH, D("2026-03-31")) == 2026

    def test_named_after_the_start_the_same_days_are_fy2026(self):
        rules = CalendarRules("gregorian", fiscal_year_start_month=4, year_naming="start")
        assert fiscal_year_bounds(rules, 2026) == (D("2026-04-01"), D("2027-03-31"))

    def test_a_calendar_year_uses_month_labels(self):
        periods = spans_of(CalendarRules("gregorian"), 2026, "period")
        assert [p.label for p in periods[:3]] == ["2026-01", "2026-02", "2026-03"]
        assert periods[1].days == 28
        assert spans_of(CalendarRules("gregorian"), 2026, "quarter")[0].label == "2026-Q1"
        assert spans_of(CalendarRules("gregorian"), 2024, "period")[1].days == 29

    def test_the_day_row_of_14_march_2026(self):
        (day,) = [s for s in generate(CalendarRules("gregorian"), 2026, 2026) if s.start == D("2026-03-14")
                  and s.level == "day"]  # fmt: skip
        assert (day.label, day.period_label, day.quarter_label, day.half_label, day.year_label) == (
            "2026-03-14", "2026-03", "2026-Q1", "2026-H1", "2026"
        )  # fmt: skip
        assert day.week_index is None  # Gregorian months have no weeks


CUSTOM_ROWS = [
    {"label": "Spring 26", "start": "2026-01-01", "end": "2026-04-15"},
    {"label": "Summer 26", "start": "2026-04-16", "end": "2026-09-30"},
    {"label": "Autumn 26", "start": "2026-10-01", "end": "2026-12-31"},
    {"label": "Spring 27", "start": "2027-01-01", "end": "2027-04-15"},
]


class TestCustomLists:
    def test_a_valid_list_becomes_periods_and_years_derived_from_them(self):
        spans = custom_spans(CUSTOM_ROWS)
        periods = [s for s in spans if s.level == "period"]
        years = [s for s in spans if s.level == "year"]
        assert [(p.label, p.fiscal_year, p.number, p.index) for p in periods] == [
            ("Spring 26", 2026, 1, 1), ("Summer 26", 2026, 2, 2), ("Autumn 26", 2026, 3, 3), ("Spring 27", 2027, 1, 4)
        ]  # fmt: skip
        assert [(y.label, y.start, y.end) for y in years] == [
            ("FY2026", D("2026-01-01"), D("2026-12-31")),
            ("FY2027", D("2027-01-01"), D("2027-04-15")),
        ]
        assert not {s.level for s in spans} & {"week", "quarter", "half"}  # not generated unless given

    def test_rows_may_come_in_any_order_and_with_coarser_levels(self):
        rows = [*reversed(CUSTOM_ROWS[:3]), {"label": "Year 26", "level": "year", "start": "2026-01-01",
                                             "end": "2026-12-31", "fiscal_year": 2026}]  # fmt: skip
        spans = custom_spans(rows)
        assert [s.label for s in spans if s.level == "period"] == ["Spring 26", "Summer 26", "Autumn 26"]
        assert {s.year_label for s in spans} == {"Year 26"}

    def test_a_gap_is_refused_where_it_is(self):
        rows = [CUSTOM_ROWS[0], {**CUSTOM_ROWS[1], "start": "2026-04-20"}]
        with pytest.raises(CalendarRuleError) as refused:
            custom_spans(rows)
        assert refused.value.errors == {
            "custom_periods/1/start": ["Gap: 'Spring 26' ends 2026-04-15, 'Summer 26' starts 2026-04-20."]
        }

    def test_an_overlap_is_refused(self):
        rows = [CUSTOM_ROWS[0], {**CUSTOM_ROWS[1], "start": "2026-04-10"}]
        with pytest.raises(CalendarRuleError, match="'Summer 26' overlaps 'Spring 26'"):
            custom_spans(rows)

    @pytest.mark.parametrize(
        ("row", "where", "message"),
        [
            ({"label": "X", "start": "2026-13-01", "end": "2026-12-31"}, "custom_periods/0/start", "A date"),
            ({"label": "X", "start": "2026-02-01", "end": "2026-01-01"}, "custom_periods/0/end", "before it starts"),
            ({"label": "", "start": "2026-01-01", "end": "2026-01-31"}, "custom_periods/0/label", "A label"),
            ({"label": "X", "start": "2026-01-01", "end": "2026-01-31", "level": "day"}, "custom_periods/0/level",
             "One of"),
            ({"label": "X", "start": "2026-01-01", "end": "2026-01-31", "colour": "red"}, "custom_periods/0",
             "Unknown key"),
        ],
    )  # fmt: skip
    def test_a_bad_row_is_refused_with_its_place(self, row, where, message):
        with pytest.raises(CalendarRuleError) as refused:
            custom_spans([row])
        assert message in " ".join(refused.value.errors[where])

    def test_an_empty_list_and_a_list_without_periods_are_refused(self):
        with pytest.raises(CalendarRuleError, match="at least one period"):
            custom_spans([])
        with pytest.raises(CalendarRuleError, match="needs rows of level 'period'"):
            custom_spans([{"label": "Q", "level": "quarter", "start": "2026-01-01", "end": "2026-03-31"}])

    def test_a_duplicate_label_is_refused(self):
        rows = [CUSTOM_ROWS[0], {**CUSTOM_ROWS[1], "label": "Spring 26"}]
        with pytest.raises(CalendarRuleError, match="used twice"):
            custom_spans(rows)

    def test_a_period_straddling_two_quarters_is_refused(self):
        rows = [*CUSTOM_ROWS[:3],
                {"label": "Q1", "level": "quarter", "start": "2026-01-01", "end": "2026-03-31"},
                {"label": "Q2-4", "level": "quarter", "start": "2026-04-01", "end": "2026-12-31"}]  # fmt: skip
        with pytest.raises(CalendarRuleError, match="'Spring 26' is not inside one quarter row"):
            custom_spans(rows)

    def test_levels_must_cover_the_same_days(self):
        rows = [*CUSTOM_ROWS[:3], {"label": "H1", "level": "half", "start": "2026-01-01", "end": "2026-06-30"}]
        with pytest.raises(CalendarRuleError, match="every level must cover the same days"):
            custom_spans(rows)

    def test_generation_keeps_list_indexes_when_years_are_picked(self):
        rules = CalendarRules("custom", custom_periods=tuple(CUSTOM_ROWS))
        spans = generate(rules, 2027, 2027)
        (period,) = [s for s in spans if s.level == "period"]
        assert (period.label, period.index, period.number) == ("Spring 27", 4, 1)
        assert len([s for s in spans if s.level == "day"]) == 105


# --- every kind tiles time ----------------------------------------------------------------------------
TILING_CASES = {
    "iso": (ISO, 2018, 2028),
    "nrf": (NRF, 2016, 2030),
    "4-4-5 last": (LAST_SATURDAY_OF_DECEMBER, 2018, 2030),
    "4-4-5 nearest": (NEAREST_SATURDAY_TO_DECEMBER_END, 2018, 2030),
    "5-4-4 june": (CalendarRules("retail_544", year_end_month=6, year_end_weekday=6), 2018, 2030),
    "gregorian": (CalendarRules("gregorian"), 2018, 2030),
    "april": (APRIL_TO_MARCH, 2018, 2030),
    "custom": (CalendarRules("custom", custom_periods=tuple(CUSTOM_ROWS)), None, None),
}


@pytest.mark.parametrize("case", TILING_CASES, ids=list(TILING_CASES))
def test_every_level_tiles_its_years_and_every_day_names_its_periods(case):
    rules, first, last = TILING_CASES[case]
    spans = generate(rules, first, last)
    years = sorted((s for s in spans if s.level == "year"), key=lambda s: s.start)
    by_level: dict[str, list] = {}
    for span in spans:
        by_level.setdefault(span.level, []).append(span)
    for year in years:
        for level, rows in by_level.items():
            if level == "year":
                continue
            inside = sorted((s for s in rows if s.fiscal_year == year.fiscal_year), key=lambda s: s.start)
            assert inside[0].start == year.start, f"{level} of {year.label} starts late"
            assert inside[-1].end == year.end, f"{level} of {year.label} ends early"
            for before, after in itertools.pairwise(inside):
                assert after.start == before.end + timedelta(days=1), f"{level}: gap or overlap at {after.label}"
            assert sum(s.days for s in inside) == year.days
            assert [s.number for s in inside] == list(range(1, len(inside) + 1))
    for before, after in itertools.pairwise(years):
        assert after.start == before.end + timedelta(days=1)
        assert after.index == before.index + 1
    # indexes run on across years: the previous period is always index - 1
    for level, rows in by_level.items():
        ordered = sorted(rows, key=lambda s: s.start)
        assert [s.index for s in ordered] == list(range(ordered[0].index, ordered[0].index + len(ordered))), level
    # each day row names exactly the periods holding it
    holders = {level: sorted(rows, key=lambda s: s.start) for level, rows in by_level.items() if level != "day"}
    for day in by_level["day"]:
        for level, rows in holders.items():
            holding = [s for s in rows if s.start <= day.start <= s.end]
            assert len(holding) == 1
            column = "fiscal_year" if level == "year" else f"{level}_index"
            assert getattr(day, column) == holding[0].index, f"{day.label} {level}"


def test_a_hundred_and_fifty_years_are_generated_in_well_under_a_few_seconds():
    import time

    began = time.process_time()  # CPU time: other processes on a busy machine do not count
    spans = generate(NRF, 1950, 2099)
    assert len(spans) > 150 * 364
    assert time.process_time() - began < 5


@pytest.mark.parametrize(
    ("rules", "errors"),
    [
        (CalendarRules("lunar"), "kind"),
        (CalendarRules("retail_445", year_end_month=13), "year_end_month"),
        (CalendarRules("retail_445", year_end_weekday=7), "year_end_weekday"),
        (CalendarRules("retail_445", year_end_rule="closest"), "year_end_rule"),
        (CalendarRules("gregorian", fiscal_year_start_month=0), "fiscal_year_start_month"),
    ],
)
def test_bad_rules_are_refused_by_field(rules, errors):
    with pytest.raises(CalendarRuleError) as refused:
        rules.check()
    assert errors in refused.value.errors


@pytest.mark.parametrize(("first", "last", "field"), [(2030, 2020, "to_year"), (1800, 1801, "from_year")])
def test_bad_year_ranges_are_refused(first, last, field):
    with pytest.raises(CalendarRuleError) as refused:
        generate(NRF, first, last)
    assert field in refused.value.errors


# --- more known dates: published retail calendars, every fiscal start month, every year-end rule ---------
class TestPublishedRetailCalendars:
    def test_nrf_fy2023_fiscal_months_match_the_published_4_5_4_calendar(self):
        # NRF 4-5-4 calendar 2023 (53 weeks): February 29 Jan-25 Feb … January (5 weeks) 31 Dec-3 Feb 2024.
        months = [(s.label, s.start.isoformat(), s.end.isoformat()) for s in spans_of(NRF, 2023, "period")]
        assert months == [
            ("FY2023-P01", "2023-01-29", "2023-02-25"), ("FY2023-P02", "2023-02-26", "2023-04-01"),
            ("FY2023-P03", "2023-04-02", "2023-04-29"), ("FY2023-P04", "2023-04-30", "2023-05-27"),
            ("FY2023-P05", "2023-05-28", "2023-07-01"), ("FY2023-P06", "2023-07-02", "2023-07-29"),
            ("FY2023-P07", "2023-07-30", "2023-08-26"), ("FY2023-P08", "2023-08-27", "2023-09-30"),
            ("FY2023-P09", "2023-10-01", "2023-10-28"), ("FY2023-P10", "2023-10-29", "2023-11-25"),
            ("FY2023-P11", "2023-11-26", "2023-12-30"), ("FY2023-P12", "2023-12-31", "2024-02-03"),
        ]  # fmt: skip

    def test_nrf_fy2024_quarters_end_where_nrf_retailers_reported_them(self):
        # Retailers on the NRF calendar closed FY2024 Q1 on 4 May, Q2 on 3 August, Q3 on 2 November 2024.
        quarters = [(s.label, s.end) for s in spans_of(NRF, 2024, "quarter")]
        assert quarters == [("FY2024-Q1", D("2024-05-04")), ("FY2024-Q2", D("2024-08-03")),
                            ("FY2024-Q3", D("2024-11-02")), ("FY2024-Q4", D("2025-02-01"))]  # fmt: skip

    def test_a_4_4_5_year_on_the_nrf_year_end_with_52_and_53_weeks(self):
        rules = CalendarRules("retail_445", year_end_month=1, year_end_weekday=5, year_end_rule="nearest",
                              year_naming="start")  # fmt: skip
        assert weeks_per_period(rules, 2023) == [4, 4, 5] * 3 + [4, 4, 6]
        assert weeks_per_period(rules, 2024) == [4, 4, 5] * 4
        p03, p12 = spans_of(rules, 2023, "period")[2], spans_of(rules, 2023, "period")[11]
        assert (p03.start, p03.end) == (D("2023-03-26"), D("2023-04-29"))
        assert (p12.start, p12.end, p12.days) == (D("2023-12-24"), D("2024-02-03"), 42)
        assert spans_of(rules, 2024, "period")[0].start == D("2024-02-04")

    @pytest.mark.parametrize(
        ("year", "start", "end", "weeks"),
        [(2021, "2020-08-31", "2021-08-29", 52), (2022, "2021-08-30", "2022-08-28", 52),
         (2023, "2022-08-29", "2023-09-03", 53), (2024, "2023-09-04", "2024-09-01", 52),
         (2025, "2024-09-02", "2025-08-31", 52)],
    )  # fmt: skip
    def test_years_ending_on_the_sunday_nearest_31_august(self, year, start, end, weeks):
        # A 52/53-week year as Costco's (fiscal 2023 had 53 weeks and ended 3 September 2023).
        rules = CalendarRules("retail_445", year_end_month=8, year_end_weekday=6, year_end_rule="nearest")
        assert fiscal_year_bounds(rules, year) == (D(start), D(end))
        assert len(spans_of(rules, year, "week")) == weeks

    def test_a_last_saturday_of_december_year_has_53_weeks_when_31_december_is_a_saturday(self):
        bounds = {year: fiscal_year_bounds(LAST_SATURDAY_OF_DECEMBER, year) for year in (2021, 2022, 2023)}
        assert bounds == {2021: (D("2020-12-27"), D("2021-12-25")), 2022: (D("2021-12-26"), D("2022-12-31")),
                          2023: (D("2023-01-01"), D("2023-12-30"))}  # fmt: skip


@pytest.mark.parametrize("month", range(1, 13))
@pytest.mark.parametrize("rule", ["last", "nearest"])
def test_retail_years_for_every_year_end_month_and_weekday_have_52_or_53_whole_weeks(month, rule):
    for weekday in range(7):
        rules = CalendarRules("retail_544", year_end_month=month, year_end_weekday=weekday, year_end_rule=rule)
        previous_end = None
        long_years = 0
        for year in range(2000, 2041):
            start, end = fiscal_year_bounds(rules, year)
            assert end.weekday() == weekday and (end - start).days + 1 in (364, 371)
            assert previous_end is None or start == previous_end + timedelta(days=1)
            month_end = date(end.year if end.month >= month else end.year - 1, month, 1)
            month_end = date(month_end.year + month_end.month // 12, month_end.month % 12 + 1, 1) - timedelta(days=1)
            if rule == "last":
                assert end.month == month and 0 <= (month_end - end).days <= 6
            else:
                assert abs((end - month_end).days) <= 3
            long_years += (end - start).days == 370
            previous_end = end
        assert 6 <= long_years <= 9  # a 53-week year every five or six years


@pytest.mark.parametrize("start_month", range(1, 13))
def test_a_gregorian_fiscal_year_may_start_in_any_month(start_month):
    by_end = CalendarRules("gregorian", fiscal_year_start_month=start_month)
    by_start = CalendarRules("gregorian", fiscal_year_start_month=start_month, year_naming="start")
    first = date(2026, start_month, 1)
    named = 2026 if start_month == 1 else 2027  # named after the year it ends in
    start, end = fiscal_year_bounds(by_end, named)
    assert start == first and end == date(first.year + 1, start_month, 1) - timedelta(days=1)
    assert fiscal_year_bounds(by_start, 2026) == (start, end)
    assert fiscal_year_of(by_end, first) == named and fiscal_year_of(by_end, first - timedelta(days=1)) == named - 1
    periods = spans_of(by_end, named, "period")
    assert [p.start.month for p in periods] == [(start_month - 1 + k) % 12 + 1 for k in range(12)]
    assert all(p.start.day == 1 for p in periods) and sum(p.days for p in periods) == (end - start).days + 1
    labels = [p.label for p in periods]
    assert labels[2] == ("2026-03" if start_month == 1 else f"FY{named}-P03")
    q1 = spans_of(by_end, named, "quarter")[0]
    assert (q1.start, q1.end) == (periods[0].start, periods[2].end)


@pytest.mark.parametrize(
    ("day", "week_label", "year_label"),
    [("2020-12-31", "2020-W53", "2020"), ("2021-01-03", "2020-W53", "2020"), ("2026-12-31", "2026-W53", "2026"),
     ("2027-01-03", "2026-W53", "2026"), ("2025-12-29", "2026-W01", "2026"), ("2024-12-30", "2025-W01", "2025")],
)  # fmt: skip
def test_iso_day_rows_around_new_year_name_their_iso_week_and_year(day, week_label, year_label):
    year = int(year_label)
    (row,) = [s for s in generate(ISO, year, year) if s.level == "day" and s.start == D(day)]
    assert (row.week_label, row.year_label, row.fiscal_year) == (week_label, year_label, year)
    (week,) = [s for s in generate(ISO, year, year) if s.level == "week" and s.label == week_label]
    assert week.start.weekday() == 0 and week.days == 7 and week.contains(D(day))
