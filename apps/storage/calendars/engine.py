"""The calendar engine: a calendar's rules in, exact periods out. Pure Python: no database, no Django.

Every kind produces fiscal years and, inside each year, its levels as `Span`s with exact
first and last days (inclusive), plus one `day` span per day that carries the index and
label of every period holding it, so a period table built from the spans buckets a date
with one join on the day row.

- gregorian: calendar months from any fiscal start month (4 = April–March years).
- iso_week: ISO 8601 years of 52 or 53 Monday–Sunday weeks; week 1 holds 4 January.
- retail_445 / retail_454 / retail_544: 52/53-week years ending on a fixed weekday, either
  the last one of the year-end month or the one nearest its end (up to 3 days either side);
  quarters of 13 weeks split 4-4-5, 4-5-4 or 5-4-4; a 53rd week goes to the last fiscal
  month of Q4 (or the first month of Q1).
- custom: an explicit list of {label, start, end[, level, fiscal_year]} rows, validated to
  tile time (contiguous, no overlaps, finer levels nested in coarser ones).

Indexes are running ordinals per level that do not depend on which years were generated:
year = fiscal year, half = 2·fy + h − 1, quarter = 4·fy + q − 1, period = 12·fy + p − 1,
week = first day's ordinal // 7 (all weeks of a calendar start on the same weekday), day =
the date's ordinal; custom periods count along the list. "Previous" is always index − 1.
"""

from __future__ import annotations

import calendar as stdlib_calendar
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

GREGORIAN = "gregorian"
ISO_WEEK = "iso_week"
CUSTOM = "custom"
RETAIL_PATTERNS: dict[str, tuple[int, int, int]] = {
    "retail_445": (4, 4, 5),
    "retail_454": (4, 5, 4),
    "retail_544": (5, 4, 4),
}
KINDS = (GREGORIAN, ISO_WEEK, *RETAIL_PATTERNS, CUSTOM)
LEVELS = ("day", "week", "period", "quarter", "half", "year")  # finest first
CUSTOM_LEVELS = ("week", "period", "quarter", "half", "year")
# Coarser levels a period of each level nests in (weeks need not nest in periods: Gregorian months).
NESTS_IN: dict[str, tuple[str, ...]] = {
    "week": ("year",),
    "period": ("quarter", "half", "year"),
    "quarter": ("half", "year"),
    "half": ("year",),
    "year": (),
}
MIN_YEAR, MAX_YEAR = 1901, 2199
MAX_YEARS = 200  # per generation run
MAX_CUSTOM_ROWS = 5000
LABEL_MAX_LENGTH = 40


class CalendarRuleError(ValueError):
    """Rules or a custom list that make no calendar; `errors` maps a field path to its problems."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items()))


@dataclass(frozen=True)
class CalendarRules:
    """What defines a calendar (the Calendar model's rule fields)."""

    kind: str
    year_end_month: int = 12
    year_end_weekday: int = 5  # 0 = Monday … 6 = Sunday
    year_end_rule: str = "last"  # or "nearest"
    week53_placement: str = "last_month"  # or "first_month"
    year_naming: str = "end"  # or "start" (NRF)
    fiscal_year_start_month: int = 1  # gregorian only
    custom_periods: tuple[Mapping[str, Any], ...] = ()

    def check(self, *, custom_list: bool = True) -> None:
        """Refuse rules that make no calendar (and, unless told not to, a bad custom list)."""
        errors: dict[str, list[str]] = {}
        if self.kind not in KINDS:
            errors["kind"] = [f"Unknown calendar kind '{self.kind}'; one of {', '.join(KINDS)}."]
        if not 1 <= self.year_end_month <= 12:
            errors["year_end_month"] = ["A month from 1 to 12."]
        if not 0 <= self.year_end_weekday <= 6:
            errors["year_end_weekday"] = ["A weekday from 0 (Monday) to 6 (Sunday)."]
        if self.year_end_rule not in ("last", "nearest"):
            errors["year_end_rule"] = ["'last' or 'nearest'."]
        if self.week53_placement not in ("last_month", "first_month"):
            errors["week53_placement"] = ["'last_month' or 'first_month'."]
        if self.year_naming not in ("end", "start"):
            errors["year_naming"] = ["'end' or 'start'."]
        if not 1 <= self.fiscal_year_start_month <= 12:
            errors["fiscal_year_start_month"] = ["A month from 1 to 12."]
        if errors:
            raise CalendarRuleError(errors)
        if self.kind == CUSTOM and custom_list:
            custom_spans(self.custom_periods)  # raises on a bad list

    @property
    def is_retail(self) -> bool:
        return self.kind in RETAIL_PATTERNS


@dataclass(frozen=True, slots=True)
class Span:
    """One period of one level with its place in every coarser level (None/"" where it has none)."""

    level: str
    start: date
    end: date  # inclusive
    label: str
    fiscal_year: int
    number: int  # within the fiscal year: week 1..53, period 1..12, quarter 1..4, half 1..2, day 1..371
    index: int  # running ordinal per level: previous = index - 1
    year_label: str
    week_index: int | None = None
    week_label: str = ""
    period_index: int | None = None
    period_label: str = ""
    quarter_index: int | None = None
    quarter_label: str = ""
    half_index: int | None = None
    half_label: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


# --- ISO 8601 weeks ---------------------------------------------------------------------------------
def iso_year_start(year: int) -> date:
    """Monday of ISO week 1: the week holding 4 January."""
    jan4 = date(year, 1, 4)
    return jan4 - timedelta(days=jan4.weekday())


def iso_week_of(day: date) -> tuple[int, int, int]:
    """(ISO year, week 1..53, weekday 1..7) of a date; the ISO year may differ from the calendar year."""
    year = day.year
    if day >= iso_year_start(year + 1):
        year += 1
    elif day < iso_year_start(year):
        year -= 1
    return year, (day - iso_year_start(year)).days // 7 + 1, day.weekday() + 1


def iso_weeks_in_year(year: int) -> int:
    return (iso_year_start(year + 1) - iso_year_start(year)).days // 7


# --- 52/53-week years -------------------------------------------------------------------------------
def year_end_date(year: int, month: int, weekday: int, rule: str) -> date:
    """The last `weekday` of `month`, or (rule "nearest") the `weekday` nearest its last day."""
    last = date(year, month, stdlib_calendar.monthrange(year, month)[1])
    if rule == "last":
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    ahead = (weekday - last.weekday()) % 7
    return last + timedelta(days=ahead) if ahead <= 3 else last - timedelta(days=7 - ahead)


def _anchor_year(rules: CalendarRules, fiscal_year: int) -> int:
    """The calendar year of the year-end month of a fiscal year.

    Named after its end ("end"), a fiscal year is its year-end month's year; named after its
    start (NRF), it is the year before, unless the year ends in December (then both coincide).
    """
    if rules.year_naming == "start" and rules.year_end_month != 12:
        return fiscal_year + 1
    return fiscal_year


def retail_year_bounds(rules: CalendarRules, fiscal_year: int) -> tuple[date, date]:
    anchor = _anchor_year(rules, fiscal_year)
    end = year_end_date(anchor, rules.year_end_month, rules.year_end_weekday, rules.year_end_rule)
    previous_end = year_end_date(anchor - 1, rules.year_end_month, rules.year_end_weekday, rules.year_end_rule)
    return previous_end + timedelta(days=1), end


def _gregorian_first_year(rules: CalendarRules, fiscal_year: int) -> int:
    """The calendar year of a Gregorian fiscal year's first month."""
    if rules.fiscal_year_start_month != 1 and rules.year_naming == "end":
        return fiscal_year - 1
    return fiscal_year


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    total = year * 12 + (month - 1) + months
    return total // 12, total % 12 + 1


def fiscal_year_bounds(rules: CalendarRules, fiscal_year: int) -> tuple[date, date]:
    """First and last day of a fiscal year."""
    if rules.kind == ISO_WEEK:
        return iso_year_start(fiscal_year), iso_year_start(fiscal_year + 1) - timedelta(days=1)
    if rules.is_retail:
        return retail_year_bounds(rules, fiscal_year)
    if rules.kind == GREGORIAN:
        year, month = _gregorian_first_year(rules, fiscal_year), rules.fiscal_year_start_month
        next_year, next_month = _add_months(year, month, 12)
        return date(year, month, 1), date(next_year, next_month, 1) - timedelta(days=1)
    for span in custom_spans(rules.custom_periods):
        if span.level == "year" and span.fiscal_year == fiscal_year:
            return span.start, span.end
    raise KeyError(f"the custom list has no fiscal year {fiscal_year}")


def fiscal_year_of(rules: CalendarRules, day: date) -> int | None:
    """The fiscal year holding `day` (None for a custom calendar whose list does not cover it)."""
    if rules.kind == ISO_WEEK:
        return iso_week_of(day)[0]
    if rules.kind == GREGORIAN:
        first_year = day.year if day.month >= rules.fiscal_year_start_month else day.year - 1
        return first_year + 1 if rules.fiscal_year_start_month != 1 and rules.year_naming == "end" else first_year
    if rules.is_retail:
        for candidate in range(day.year - 2, day.year + 2):
            start, end = retail_year_bounds(rules, candidate)
            if start <= day <= end:
                return candidate
        raise AssertionError(f"no retail year holds {day}")  # unreachable: years tile time
    for span in custom_spans(rules.custom_periods):
        if span.level == "year" and span.contains(day):
            return span.fiscal_year
    return None


# --- generation -------------------------------------------------------------------------------------
@dataclass
class _Row:
    level: str
    start: date
    end: date
    label: str
    fiscal_year: int
    number: int
    index: int
    parents: dict[str, tuple[int, str]] = field(default_factory=dict)


def generate(rules: CalendarRules, from_year: int | None = None, to_year: int | None = None) -> list[Span]:
    """Every span of the fiscal years from_year..to_year (both included), days included.

    For a custom calendar the years default to those of its list.
    """
    rules.check(custom_list=False)
    if rules.kind == CUSTOM:
        spans = custom_spans(rules.custom_periods, with_days=True)
        return [
            s
            for s in spans
            if (from_year is None or s.fiscal_year >= from_year) and (to_year is None or s.fiscal_year <= to_year)
        ]
    if from_year is None or to_year is None:
        raise CalendarRuleError({"from_year": ["Give the first and the last fiscal year to generate."]})
    check_year_range(from_year, to_year)
    spans: list[Span] = []
    for fiscal_year in range(from_year, to_year + 1):
        spans.extend(year_spans(rules, fiscal_year))
    return spans


def check_year_range(from_year: int, to_year: int) -> None:
    errors: dict[str, list[str]] = {}
    for name, value in (("from_year", from_year), ("to_year", to_year)):
        if not MIN_YEAR <= value <= MAX_YEAR:
            errors[name] = [f"A year from {MIN_YEAR} to {MAX_YEAR}."]
    if not errors and from_year > to_year:
        errors["to_year"] = [f"The last year ({to_year}) comes before the first ({from_year})."]
    if not errors and to_year - from_year + 1 > MAX_YEARS:
        errors["to_year"] = [f"At most {MAX_YEARS} years at a time."]
    if errors:
        raise CalendarRuleError(errors)


def year_spans(rules: CalendarRules, fiscal_year: int) -> list[Span]:
    """The spans of one fiscal year of a rule-based calendar (not custom), coarsest first, days last."""
    start, end = fiscal_year_bounds(rules, fiscal_year)
    fy = fiscal_year
    if rules.kind == ISO_WEEK:
        label = str(fy)
        levels: dict[str, list[_Row]] = {"year": [_Row("year", start, end, label, fy, 1, fy)]}
        levels["week"] = [
            _Row("week", start + timedelta(weeks=w), start + timedelta(weeks=w, days=6), f"{fy}-W{w + 1:02d}", fy,
                 w + 1, (start + timedelta(weeks=w)).toordinal() // 7)
            for w in range((end - start).days // 7 + 1)
        ]  # fmt: skip
        return _assemble(levels, label)

    calendar_year = rules.kind == GREGORIAN and rules.fiscal_year_start_month == 1
    prefix = str(fy) if calendar_year else f"FY{fy}"
    periods: list[_Row] = []
    weeks: list[_Row] = []
    if rules.kind == GREGORIAN:
        year, month = start.year, start.month
        for number in range(1, 13):
            next_year, next_month = _add_months(year, month, 1)
            label = f"{year}-{month:02d}" if calendar_year else f"{prefix}-P{number:02d}"
            periods.append(_Row("period", date(year, month, 1), date(next_year, next_month, 1) - timedelta(days=1),
                                label, fy, number, fy * 12 + number - 1))  # fmt: skip
            year, month = next_year, next_month
    else:
        weeks_per_period = list(RETAIL_PATTERNS[rules.kind] * 4)
        week_count = ((end - start).days + 1) // 7
        if week_count == 53:
            weeks_per_period[11 if rules.week53_placement == "last_month" else 0] += 1
        cursor = start
        for number, count in enumerate(weeks_per_period, start=1):
            last = cursor + timedelta(weeks=count, days=-1)
            periods.append(_Row("period", cursor, last, f"{prefix}-P{number:02d}", fy, number, fy * 12 + number - 1))
            cursor = last + timedelta(days=1)
        weeks = [
            _Row("week", start + timedelta(weeks=w), start + timedelta(weeks=w, days=6), f"{prefix}-W{w + 1:02d}", fy,
                 w + 1, (start + timedelta(weeks=w)).toordinal() // 7)
            for w in range(week_count)
        ]  # fmt: skip
    quarters = [
        _Row("quarter", periods[3 * q].start, periods[3 * q + 2].end, f"{prefix}-Q{q + 1}", fy, q + 1, fy * 4 + q)
        for q in range(4)
    ]
    halves = [
        _Row("half", periods[6 * h].start, periods[6 * h + 5].end, f"{prefix}-H{h + 1}", fy, h + 1, fy * 2 + h)
        for h in range(2)
    ]
    levels = {"year": [_Row("year", start, end, prefix, fy, 1, fy)], "half": halves, "quarter": quarters,
              "period": periods}  # fmt: skip
    if weeks:
        levels["week"] = weeks
    return _assemble(levels, prefix)


def _assemble(levels: dict[str, list[_Row]], year_label: str) -> list[Span]:
    """Spans of one fiscal year: every row gets its enclosing rows of coarser levels; then one span per day."""
    present = [level for level in reversed(LEVELS) if level in levels]  # coarsest first
    for level in present:
        for row in levels[level]:
            row.parents[level] = (row.index, row.label)
    for position, level in enumerate(present):
        for coarser in present[:position]:
            _link(levels[level], levels[coarser])
    spans = [_span(row, year_label) for level in present for row in levels[level]]
    year = levels["year"][0]
    finer = [levels[level] for level in present if level != "year"]
    pointers = [0] * len(finer)
    day, number = year.start, 1
    while day <= year.end:
        parents = dict(year.parents)
        for i, rows in enumerate(finer):
            while pointers[i] < len(rows) and rows[pointers[i]].end < day:
                pointers[i] += 1
            if pointers[i] < len(rows) and rows[pointers[i]].start <= day:
                row = rows[pointers[i]]
                parents[row.level] = (row.index, row.label)
        spans.append(_span(_Row("day", day, day, day.isoformat(), year.fiscal_year, number, day.toordinal(),
                                parents), year_label))  # fmt: skip
        day += timedelta(days=1)
        number += 1
    return spans


def _link(rows: list[_Row], coarser_rows: list[_Row]) -> None:
    """Give each row the coarser row that holds it entirely (both lists sorted by start)."""
    j = 0
    for row in rows:
        while j < len(coarser_rows) and coarser_rows[j].end < row.start:
            j += 1
        if j < len(coarser_rows) and coarser_rows[j].start <= row.start and row.end <= coarser_rows[j].end:
            parent = coarser_rows[j]
            row.parents[parent.level] = (parent.index, parent.label)


def _span(row: _Row, year_label: str) -> Span:
    def part(level: str) -> tuple[int | None, str]:
        return row.parents.get(level, (None, ""))

    week, period, quarter, half = part("week"), part("period"), part("quarter"), part("half")
    return Span(
        level=row.level, start=row.start, end=row.end, label=row.label, fiscal_year=row.fiscal_year,
        number=row.number, index=row.index, year_label=year_label,
        week_index=week[0], week_label=week[1], period_index=period[0], period_label=period[1],
        quarter_index=quarter[0], quarter_label=quarter[1], half_index=half[0], half_label=half[1],
    )  # fmt: skip


# --- custom lists -----------------------------------------------------------------------------------
def _parse_day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def custom_spans(rows: Iterable[Mapping[str, Any]], *, with_days: bool = False) -> list[Span]:
    """Validate a custom list and turn it into spans (years derived from the periods when not given).

    A row is {label, start, end} with optional `level` (default "period") and `fiscal_year`
    (default: that of the year row holding it, else the calendar year of its last day). Each
    level must be contiguous and free of overlaps, all levels must cover the same days, and a
    period must lie inside one quarter, half and year (a week inside one year).
    """
    rows = list(rows)
    errors: dict[str, list[str]] = {}

    def refuse(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    if not rows:
        raise CalendarRuleError({"custom_periods": ["Give at least one period: [{label, start, end}, …]."]})
    if len(rows) > MAX_CUSTOM_ROWS:
        raise CalendarRuleError({"custom_periods": [f"At most {MAX_CUSTOM_ROWS} rows."]})
    parsed: dict[str, list[tuple[int, _Row, int | None]]] = {}
    for position, raw in enumerate(rows):
        where = f"custom_periods/{position}"
        known_problems = sum(len(messages) for messages in errors.values())
        if not isinstance(raw, Mapping):
            refuse(where, "A row is an object {label, start, end}.")
            continue
        unknown = sorted(set(raw) - {"label", "start", "end", "level", "fiscal_year"})
        if unknown:
            refuse(where, f"Unknown key(s): {', '.join(unknown)}.")
        label = raw.get("label")
        if not isinstance(label, str) or not label.strip() or len(label.strip()) > LABEL_MAX_LENGTH:
            refuse(f"{where}/label", f"A label of 1 to {LABEL_MAX_LENGTH} characters.")
        level = raw.get("level", "period")
        if level not in CUSTOM_LEVELS:
            refuse(f"{where}/level", f"One of {', '.join(CUSTOM_LEVELS)}.")
        start, end = _parse_day(raw.get("start")), _parse_day(raw.get("end"))
        if start is None:
            refuse(f"{where}/start", "A date (YYYY-MM-DD).")
        if end is None:
            refuse(f"{where}/end", "A date (YYYY-MM-DD).")
        if start and end and start > end:
            refuse(f"{where}/end", f"Ends ({end}) before it starts ({start}).")
        fiscal_year = raw.get("fiscal_year")
        if fiscal_year is not None and (isinstance(fiscal_year, bool) or not isinstance(fiscal_year, int)
                                        or not MIN_YEAR <= fiscal_year <= MAX_YEAR):  # fmt: skip
            refuse(f"{where}/fiscal_year", f"A year from {MIN_YEAR} to {MAX_YEAR}.")
        if start and end and (start.year < MIN_YEAR or end.year > MAX_YEAR):
            refuse(where, f"Dates from {MIN_YEAR} to {MAX_YEAR}.")
        if sum(len(messages) for messages in errors.values()) > known_problems:
            continue
        row = _Row(level, start, end, label.strip(), 0, 0, 0)  # type: ignore[arg-type, union-attr]
        parsed.setdefault(level, []).append((position, row, fiscal_year))
    if errors:
        raise CalendarRuleError(errors)
    if "period" not in parsed:
        raise CalendarRuleError({"custom_periods": ["The list needs rows of level 'period' (the default level)."]})

    # Each level: sorted, contiguous, no overlaps, unique labels; all levels over the same days.
    for level, items in parsed.items():
        items.sort(key=lambda item: item[1].start)
        seen: dict[str, int] = {}
        for (_, before, _), (position, row, _) in itertools.pairwise(items):
            if row.start <= before.end:
                refuse(f"custom_periods/{position}/start",
                       f"'{row.label}' overlaps '{before.label}' (which ends {before.end}).")  # fmt: skip
            elif row.start != before.end + timedelta(days=1):
                refuse(f"custom_periods/{position}/start",
                       f"Gap: '{before.label}' ends {before.end}, '{row.label}' starts {row.start}.")  # fmt: skip
        for position, row, _ in items:
            if row.label in seen:
                refuse(f"custom_periods/{position}/label", f"Label '{row.label}' is used twice at level {level}.")
            seen[row.label] = position
    if errors:
        raise CalendarRuleError(errors)
    first, last = parsed["period"][0][1].start, parsed["period"][-1][1].end
    for level, items in parsed.items():
        if (items[0][1].start, items[-1][1].end) != (first, last):
            refuse("custom_periods", f"The {level} rows cover {items[0][1].start}..{items[-1][1].end}, "
                                     f"the periods {first}..{last}: every level must cover the same days.")  # fmt: skip
    if errors:
        raise CalendarRuleError(errors)

    # Fiscal years: given on year rows (else their last day's year), or derived from the periods;
    # whatever a year row holds belongs to its fiscal year.
    years = parsed.get("year")
    if years:
        for _, row, fiscal_year in years:
            row.fiscal_year = fiscal_year if fiscal_year is not None else row.end.year
    else:
        derived: dict[int, list[_Row]] = {}
        previous = None
        for position, row, fiscal_year in parsed["period"]:
            row.fiscal_year = fiscal_year if fiscal_year is not None else row.end.year
            if previous is not None and row.fiscal_year < previous:
                refuse(f"custom_periods/{position}/fiscal_year",
                       f"'{row.label}' falls in fiscal year {row.fiscal_year}, after a period of {previous}.")  # fmt: skip
            previous = row.fiscal_year
            derived.setdefault(row.fiscal_year, []).append(row)
        if errors:
            raise CalendarRuleError(errors)
        years = [(-1, _Row("year", group[0].start, group[-1].end, f"FY{fy}", fy, 0, 0), fy)
                 for fy, group in derived.items()]  # fmt: skip
        parsed["year"] = years
    fiscal_years = [row.fiscal_year for _, row, _ in years]
    if fiscal_years != list(range(fiscal_years[0], fiscal_years[0] + len(fiscal_years))):
        raise CalendarRuleError({"custom_periods": [
            f"Fiscal years must follow each other in date order; the list gives {', '.join(map(str, fiscal_years))}."
        ]})  # fmt: skip
    for level in ("half", "quarter", "period", "week"):
        for position, row, fiscal_year in parsed.get(level, []):
            holder = next((y for _, y, _ in years if y.start <= row.start and row.end <= y.end), None)
            if holder is None:
                refuse(f"custom_periods/{position}", f"'{row.label}' is not inside one fiscal year.")
            elif fiscal_year is not None and fiscal_year != holder.fiscal_year:
                refuse(f"custom_periods/{position}/fiscal_year",
                       f"{fiscal_year} differs from the fiscal year of '{holder.label}' ({holder.fiscal_year}).")  # fmt: skip
            else:
                row.fiscal_year = holder.fiscal_year
    if errors:
        raise CalendarRuleError(errors)
    for level in ("week", "half", "quarter", "period"):
        for position, row, _ in parsed.get(level, []):
            for coarser in NESTS_IN[level]:
                holders = parsed.get(coarser)
                if holders and not any(h.start <= row.start and row.end <= h.end for _, h, _ in holders):
                    refuse(f"custom_periods/{position}", f"'{row.label}' is not inside one {coarser} row.")
    if errors:
        raise CalendarRuleError(errors)

    # Numbers within the fiscal year, indexes along the list (years: the fiscal year).
    for level, items in parsed.items():
        counters: dict[int, int] = {}
        for ordinal, (_, row, _) in enumerate(items, start=1):
            counters[row.fiscal_year] = counters.get(row.fiscal_year, 0) + 1
            row.number = 1 if level == "year" else counters[row.fiscal_year]
            row.index = row.fiscal_year if level == "year" else ordinal
    spans: list[Span] = []
    for _, year, _ in parsed["year"]:
        levels = {
            level: [row for _, row, _ in items if row.fiscal_year == year.fiscal_year]
            for level, items in parsed.items()
        }
        levels = {level: rows_ for level, rows_ in levels.items() if rows_}
        year_spans_ = _assemble(levels, year.label)
        spans.extend(s for s in year_spans_ if with_days or s.level != "day")
    return spans
