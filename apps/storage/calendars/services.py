"""Calendar services: create and change calendars, generate their period tables, close periods.

Every service is one transaction, checks the actor's right (platform calendars belong to
superusers), records field changes with django-auditlog under the actor, and publishes a
domain event: `calendar.created`, `calendar.generated`, `calendar.cleared`,
`period.soft_closed`, `period.closed`, `period.reopened`. Later code reacts to a close
(the KPI snapshot of the closed period) by subscribing to `period.closed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.runtime.events import publish_event
from apps.storage.calendars import engine
from apps.storage.calendars.choices import (
    CLOSABLE_LEVELS,
    CalendarKindChoices,
    PeriodStateChoices,
)
from apps.storage.calendars.models import Calendar, CalendarPeriod, PeriodState

S = PeriodStateChoices
RULE_FIELDS = (
    "kind", "year_end_month", "year_end_weekday", "year_end_rule", "week53_placement", "year_naming",
    "fiscal_year_start_month",
)  # fmt: skip
EDITABLE_FIELDS = ("name", "description", "is_default", "custom_periods", *RULE_FIELDS)
# What a period row holds besides its key (calendar, level, index): compared on regeneration.
SPAN_FIELDS = (
    "start", "end", "label", "fiscal_year", "number", "year_label", "half_index", "half_label", "quarter_index",
    "quarter_label", "period_index", "period_label", "week_index", "week_label",
)  # fmt: skip
BATCH_SIZE = 2000


def _check_right(actor: Any, calendar_tenant: Any) -> None:
    if calendar_tenant is None and not getattr(actor, "is_superuser", False):
        raise ForbiddenError(
            "Platform calendars are shared by every tenant; only platform operators (superusers) change them.",
            slug="platform-calendar",
        )


def _rules_errors(calendar: Calendar) -> None:
    try:
        calendar.rules.check()
    except engine.CalendarRuleError as exc:
        raise ValidationError(exc.errors) from None


def _check_key_free(calendar: Calendar) -> None:
    taken = Calendar.objects.filter(tenant=calendar.tenant, key=calendar.key).exclude(pk=calendar.pk).exists()
    if taken:
        where = "this tenant" if calendar.tenant_id else "the platform calendars"
        raise ValidationError({"key": [f"A calendar '{calendar.key}' already exists in {where}."]})


def calendar_validate(calendar: Calendar) -> None:
    """Everything create/update check, without writing: fields, key, rules, custom list (ValidationError)."""
    if calendar.kind != CalendarKindChoices.CUSTOM and calendar.custom_periods:
        raise ValidationError({"custom_periods": ["Only a custom calendar takes a period list."]})
    _check_key_free(calendar)
    calendar.full_clean(validate_constraints=False)
    _rules_errors(calendar)


def _take_default(calendar: Calendar) -> None:
    """A new default replaces the previous one of the same tenant (or of the platform)."""
    if calendar.is_default:
        Calendar.objects.select_for_update().filter(tenant=calendar.tenant, is_default=True).exclude(
            pk=calendar.pk
        ).update(is_default=False)


@transaction.atomic
def calendar_create(
    *, actor: Any, tenant: Any, key: str, name: str, kind: str, description: str = "", is_default: bool = False,
    custom_periods: list[dict[str, Any]] | None = None, **rules: Any,
) -> Calendar:  # fmt: skip
    """A calendar of the tenant (tenant None: a platform calendar, superusers only). No periods yet:
    `calendar_generate` writes them."""
    _check_right(actor, tenant)
    unknown = set(rules) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError({name: ["Unknown calendar field."] for name in sorted(unknown)})
    calendar = Calendar(
        tenant=tenant, key=key, name=name, kind=kind, description=description, is_default=is_default,
        custom_periods=_jsonable(custom_periods or []), created_by=_user(actor), **rules,
    )  # fmt: skip
    calendar_validate(calendar)
    _take_default(calendar)
    with audit_actor(actor):
        calendar.save()
    publish_event(
        "calendar.created",
        {"calendar": calendar.pk, "key": calendar.key, "kind": calendar.kind, "platform": calendar.is_platform},
        tenant=tenant,
        actor=actor,
    )
    return calendar


@transaction.atomic
def calendar_update(*, actor: Any, calendar: Calendar, **changes: Any) -> Calendar:
    """Rename, describe, make default, or (before any period exists) change the rules.

    Once periods are generated the rules are fixed, since a changed rule would move periods
    that KPIs and closes refer to: discard the periods first (`calendar_clear`) or create
    another calendar. A custom list may change; the next `calendar_generate` applies it.
    """
    calendar = Calendar.objects.select_for_update().get(pk=calendar.pk)
    _check_right(actor, calendar.tenant)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in sorted(unknown)})
    changed_rules = [f for f in RULE_FIELDS if f in changes and changes[f] != getattr(calendar, f)]
    if changed_rules and calendar.generated_from is not None:
        raise ConflictError(
            f"The rules of '{calendar.key}' are fixed: its periods FY{calendar.generated_from}..FY{calendar.generated_to} "
            f"exist. Discard them first, or create another calendar. (Changed: {', '.join(changed_rules)}.)",
            slug="calendar-rules-fixed",
        )
    if "custom_periods" in changes:
        changes["custom_periods"] = _jsonable(changes["custom_periods"] or [])
    for name, value in changes.items():
        setattr(calendar, name, value)
    calendar_validate(calendar)
    _take_default(calendar)
    with audit_actor(actor):
        calendar.save()
    return calendar


@dataclass(frozen=True)
class Generation:
    """What `calendar_generate` did, row counts over all levels (days included)."""

    calendar: Calendar
    from_year: int
    to_year: int
    created: int
    updated: int
    deleted: int
    unchanged: int


def _refresh_period_statistics() -> None:
    """KPIs and buckets join facts to the day rows: after a generation the planner must not take the
    table for the near-empty one its last statistics describe (ANALYZE samples a bounded number of
    rows). After commit, so its lock is not held by the generation's transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE storage_calendarperiod")


@transaction.atomic
def calendar_generate(
    *, actor: Any, calendar: Calendar, from_year: int | None = None, to_year: int | None = None
) -> Generation:
    """Write the period rows of fiscal years from_year..to_year; idempotent.

    Rows are matched on (level, index): unchanged rows keep their ids, missing ones are
    bulk-created, changed ones updated, vanished ones deleted, so KPI values that point at a
    period survive a regeneration. Refused (409) when a period of those years is closed by
    any tenant: regeneration never moves a closed period. The generated years stay one
    unbroken range. A custom calendar defaults to its list's years; its rows outside the
    requested years must already match the list (its indexes count along the whole list).
    """
    calendar = Calendar.objects.select_for_update().get(pk=calendar.pk)
    _check_right(actor, calendar.tenant)
    rules = calendar.rules
    try:
        rules.check(custom_list=False)
        if calendar.kind == CalendarKindChoices.CUSTOM:
            every_span = engine.custom_spans(rules.custom_periods, with_days=True)
            list_years = sorted({s.fiscal_year for s in every_span})
            from_year = list_years[0] if from_year is None else from_year
            to_year = list_years[-1] if to_year is None else to_year
            engine.check_year_range(from_year, to_year)
            if from_year < list_years[0] or to_year > list_years[-1]:
                raise engine.CalendarRuleError({"to_year": [
                    f"The custom list covers FY{list_years[0]}..FY{list_years[-1]}; add periods to it first."
                ]})  # fmt: skip
            spans = [s for s in every_span if from_year <= s.fiscal_year <= to_year]
        else:
            if from_year is None or to_year is None:
                raise engine.CalendarRuleError(
                    {"from_year" if from_year is None else "to_year": ["Give the fiscal years to generate."]}
                )
            engine.check_year_range(from_year, to_year)
            every_span = []
            spans = engine.generate(rules, from_year, to_year)
    except engine.CalendarRuleError as exc:
        raise ValidationError(exc.errors) from None
    _check_contiguous(calendar, from_year, to_year)
    closed = list(
        PeriodState.objects.filter(period__calendar=calendar, period__fiscal_year__range=(from_year, to_year),
                                   state=S.CLOSED)
        .select_related("period", "tenant").order_by("period__start")[:20]
    )  # fmt: skip
    if closed:
        labels = sorted({state.period.label for state in closed})
        raise ConflictError(
            f"FY{from_year}..FY{to_year} of '{calendar.key}' hold closed periods ({', '.join(labels)}); "
            "regeneration never moves a closed period. Generate other years, or restate instead.",
            slug="closed-periods",
            closed_periods=labels,
        )
    existing = {
        (row.level, row.index): row
        for row in CalendarPeriod.objects.filter(calendar=calendar, fiscal_year__range=(from_year, to_year))
    }
    if calendar.kind == CalendarKindChoices.CUSTOM:
        _check_custom_outside(calendar, every_span, from_year, to_year)
    to_create: list[CalendarPeriod] = []
    to_update: list[CalendarPeriod] = []
    unchanged = 0
    for span in spans:
        row = existing.pop((span.level, span.index), None)
        values = {name: getattr(span, name) for name in SPAN_FIELDS}
        if row is None:
            to_create.append(CalendarPeriod(calendar=calendar, level=span.level, index=span.index, **values))
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            to_update.append(row)
        else:
            unchanged += 1
    vanished = list(existing.values())
    moved = [row.pk for row in to_update] + [row.pk for row in vanished]
    held = (
        PeriodState.objects.filter(period_id__in=moved)
        .exclude(state=S.OPEN)
        .select_related("period")
        .order_by("period__start")
    )
    if held.exists():
        labels = sorted({state.period.label for state in held[:20]})
        raise ConflictError(
            f"Regenerating would move or remove soft-closed periods ({', '.join(labels)}); reopen them first.",
            slug="soft-closed-periods",
            soft_closed_periods=labels,
        )
    PeriodState.objects.filter(period_id__in=[row.pk for row in vanished]).delete()  # open: nothing to keep
    CalendarPeriod.objects.filter(pk__in=[row.pk for row in vanished]).delete()
    CalendarPeriod.objects.bulk_update(to_update, SPAN_FIELDS, batch_size=BATCH_SIZE)
    CalendarPeriod.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    if to_create or vanished:
        transaction.on_commit(_refresh_period_statistics)
    calendar.generated_from = min(from_year, calendar.generated_from or from_year)
    calendar.generated_to = max(to_year, calendar.generated_to or to_year)
    with audit_actor(actor):
        calendar.save(update_fields=["generated_from", "generated_to", "updated_at"])
    result = Generation(calendar, from_year, to_year, len(to_create), len(to_update), len(vanished), unchanged)
    publish_event(
        "calendar.generated",
        {"calendar": calendar.pk, "key": calendar.key, "from_year": from_year, "to_year": to_year,
         "created": result.created, "updated": result.updated, "deleted": result.deleted},
        tenant=calendar.tenant,
        actor=actor,
    )  # fmt: skip
    return result


def _check_contiguous(calendar: Calendar, from_year: int, to_year: int) -> None:
    if calendar.generated_from is None:
        return
    if to_year < calendar.generated_from - 1 or from_year > calendar.generated_to + 1:
        raise ValidationError({"from_year": [
            f"'{calendar.key}' has FY{calendar.generated_from}..FY{calendar.generated_to}; generated years stay one "
            f"unbroken range, so extend it from FY{calendar.generated_to + 1} or down to FY{calendar.generated_from - 1}."
        ]})  # fmt: skip


def _check_custom_outside(calendar: Calendar, every_span: list[engine.Span], from_year: int, to_year: int) -> None:
    """Rows outside the requested years must be what the list says (else their indexes would clash)."""
    wanted = {(s.level, s.index): s for s in every_span}
    outside = CalendarPeriod.objects.filter(calendar=calendar).exclude(fiscal_year__range=(from_year, to_year))
    stale = []
    for row in outside.iterator(chunk_size=BATCH_SIZE):
        span = wanted.get((row.level, row.index))
        if span is None or any(getattr(row, name) != getattr(span, name) for name in SPAN_FIELDS):
            stale.append(row.fiscal_year)
    if stale:
        years = ", ".join(f"FY{year}" for year in sorted(set(stale)))
        raise ConflictError(
            f"The custom list no longer matches the generated rows of {years}; regenerate those years too "
            "(append new periods at the end of the list: indexes count along it).",
            slug="custom-list-changed",
        )


@transaction.atomic
def calendar_clear(*, actor: Any, calendar: Calendar) -> Calendar:
    """Discard every period row (the rules become editable again). Refused while any tenant has
    closed or soft-closed one of its periods."""
    calendar = Calendar.objects.select_for_update().get(pk=calendar.pk)
    _check_right(actor, calendar.tenant)
    if PeriodState.objects.filter(period__calendar=calendar).exclude(state=S.OPEN).exists():
        raise ConflictError(
            f"'{calendar.key}' has closed or soft-closed periods; its period table stays.", slug="closed-periods"
        )
    PeriodState.objects.filter(period__calendar=calendar).delete()
    deleted, _ = CalendarPeriod.objects.filter(calendar=calendar).delete()
    calendar.generated_from = calendar.generated_to = None
    with audit_actor(actor):
        calendar.save(update_fields=["generated_from", "generated_to", "updated_at"])
    publish_event("calendar.cleared", {"calendar": calendar.pk, "key": calendar.key, "deleted": deleted},
                  tenant=calendar.tenant, actor=actor)  # fmt: skip
    return calendar


# --- closing periods ----------------------------------------------------------------------------------
# state now → the states a transition may start from
_TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.SOFT_CLOSED: (S.OPEN,),
    S.CLOSED: (S.OPEN, S.SOFT_CLOSED),
    S.OPEN: (S.SOFT_CLOSED,),
}
_EVENTS = {S.SOFT_CLOSED: "period.soft_closed", S.CLOSED: "period.closed", S.OPEN: "period.reopened"}


def period_soft_close(*, actor: Any, tenant: Any, period: CalendarPeriod, reason: str = "") -> PeriodState:
    """Open → soft-closed: the books are done unless something turns up; reopening is still possible."""
    return _transition(actor=actor, tenant=tenant, period=period, target=S.SOFT_CLOSED, reason=reason)


def period_close(*, actor: Any, tenant: Any, period: CalendarPeriod, reason: str = "") -> PeriodState:
    """Open or soft-closed → closed, for good: late data for it goes through a restatement.

    Publishes `period.closed`, to which the KPI snapshot of the period subscribes.
    """
    return _transition(actor=actor, tenant=tenant, period=period, target=S.CLOSED, reason=reason)


def period_reopen(*, actor: Any, tenant: Any, period: CalendarPeriod, reason: str = "") -> PeriodState:
    """Soft-closed → open. A closed period is never reopened (409)."""
    return _transition(actor=actor, tenant=tenant, period=period, target=S.OPEN, reason=reason)


@transaction.atomic
def _transition(*, actor: Any, tenant: Any, period: CalendarPeriod, target: str, reason: str) -> PeriodState:
    if tenant is None:
        raise ValidationError({"tenant": ["Periods are closed per tenant: choose a tenant."]})
    # Lock the calendar: a close and a regeneration of the same calendar never interleave.
    calendar = Calendar.objects.select_for_update().get(pk=period.calendar_id)
    if calendar.tenant_id is not None and calendar.tenant_id != tenant.pk:
        raise ValidationError({"period": ["Belongs to another tenant's calendar."]})
    period = CalendarPeriod.objects.get(pk=period.pk)
    if period.level not in CLOSABLE_LEVELS:
        raise ValidationError({"period": [f"A {period.level} is not closed on its own; close the period holding it."]})
    state = PeriodState.objects.select_for_update().filter(tenant=tenant, period=period).first()
    current = state.state if state is not None else S.OPEN
    _check_holders(tenant=tenant, period=period, target=target)
    if current not in _TRANSITIONS[target]:
        if current == S.CLOSED:
            detail = f"{period.label} is closed; a closed period is never reopened or changed (restate late data)."
        elif current == target:
            detail = f"{period.label} is already {S(current).label.lower()}."
        else:
            detail = f"{period.label} is {S(current).label.lower()}; it cannot become {S(target).label.lower()}."
        raise ConflictError(detail, slug="illegal-transition", state=current,
                            allowed_next=_allowed_next(current))  # fmt: skip
    if state is None:
        state = PeriodState(tenant=tenant, period=period)
    state.state = target
    state.changed_by = _user(actor)
    state.changed_at = timezone.now()
    state.reason = reason.strip()
    with audit_actor(actor):
        state.save()
    publish_event(
        _EVENTS[target],
        {"period": period.pk, "calendar": calendar.pk, "calendar_key": calendar.key, "level": period.level,
         "label": period.label, "start": period.start.isoformat(), "end": period.end.isoformat(),
         "fiscal_year": period.fiscal_year, "state": target, "previous_state": current, "reason": state.reason},
        tenant=tenant,
        actor=actor,
    )  # fmt: skip
    return state


def _check_holders(*, tenant: Any, period: CalendarPeriod, target: str) -> None:
    """A period inside a closed one (a month of a closed quarter) is closed for good with it; one inside a
    soft-closed one is reopened only after it (409 illegal-transition, `held_by` names the holder)."""
    holder = (
        PeriodState.objects.filter(tenant=tenant, period__calendar_id=period.calendar_id,
                                   period__start__lte=period.start, period__end__gte=period.end)
        .exclude(period=period)
        .exclude(state=S.OPEN)
        .select_related("period")
        .order_by("state", "period__start")  # "closed" sorts before "soft_closed"
        .first()
    )  # fmt: skip
    if holder is None or (holder.state == S.SOFT_CLOSED and target != S.OPEN):
        return
    if holder.state == S.CLOSED:
        detail = f"{period.label} lies inside {holder.period.label}, which is closed: it is closed for good with it."
        raise ConflictError(detail, slug="illegal-transition", state=S.CLOSED, allowed_next=[],
                            held_by=holder.period.label)  # fmt: skip
    raise ConflictError(
        f"{period.label} lies inside {holder.period.label}, which is soft-closed: reopen {holder.period.label} first.",
        slug="illegal-transition", state=S.SOFT_CLOSED, allowed_next=[], held_by=holder.period.label,
    )  # fmt: skip


def _allowed_next(current: str) -> list[str]:
    return [target for target, sources in _TRANSITIONS.items() if current in sources]


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _jsonable(rows: Any) -> Any:
    """Dates in a custom list are stored as ISO strings (JSONField)."""
    if isinstance(rows, list | tuple):
        return [_jsonable(row) for row in rows]
    if isinstance(rows, dict):
        return {key: _jsonable(value) for key, value in rows.items()}
    if isinstance(rows, date):
        return rows.isoformat()
    return rows
