"""Governed KPIs: a definition, its versions (what is computed, under four-eyes), targets, and the log.

A version is frozen from proposal on (its content hash is taken when proposed and checked when
approved), exactly like a contract version, so what the second person approves is what is computed.
A definition has at most one active version; its computed values live in storage's `KpiValue`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.compute.kpis.choices import (
    AggregationChoices,
    CumulativeModeChoices,
    DirectionChoices,
    DisplayFormatChoices,
    GrainLevelChoices,
    KpiKindChoices,
    TargetStatusChoices,
    ToleranceKindChoices,
)
from apps.host.choices import ContractStatusChoices
from apps.host.models.contracts import SEMVER, parse_semver, validate_semver
from apps.kernel.models import TenantOwnedModel, TenantQuerySet

KpiStatusChoices = ContractStatusChoices  # the same lifecycle as contract versions
SEMVER_FIELDS = ("major", "minor", "patch")


class KpiDefinition(TenantOwnedModel):
    """A KPI's identity: key, name, owner and domain; what it computes lives in its versions.

    `compute_every_seconds` puts the KPI on the beat schedule (the `compute.compute_due_kpis` job
    computes it incrementally when due); empty = computed only when a batch of its contract
    completes or by hand.
    """

    key = models.SlugField(max_length=100, help_text="Stable identifier within the tenant, e.g. 'net-sales'.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    domain = models.CharField(max_length=100, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    compute_every_seconds = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(60)], help_text="Beat schedule; empty = not scheduled."
    )
    last_scheduled_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="compute_kpidefinition_unique_key")]
        permissions = [("approve_kpidefinition", "Can approve versions and targets of this KPI")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class KpiVersionQuerySet(TenantQuerySet):
    def active(self) -> KpiVersionQuerySet:
        return self.filter(status=KpiStatusChoices.ACTIVE)


class KpiVersion(TenantOwnedModel):
    """One version of a KPI: kind, source (contract + measures), grain, dimensions, presentation.

    Kinds: simple (`aggregation` of `measure`), ratio (`aggregation` of `measure` divided by
    `denominator_aggregation` of `denominator_measure`, each summed over the group first: a ratio
    of aggregates, never an average of ratios), derived (`expression` over other KPIs' values, by
    key), cumulative (`aggregation` of `measure` accumulated `cumulative_mode`, over
    `window_periods` periods when rolling). `filters` keep only GDPs whose dimensions match
    ({"region": "north"} or {"region": ["north", "south"]}). Values are computed per period of
    `calendar` at `level` and per combination of `dimensions`.

    `computed_as_of` is the incremental watermark: every stored value of this version equals the
    belief about the GDPs at that moment. Editable only as a draft; retired is read-only.
    """

    definition = models.ForeignKey(KpiDefinition, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64, validators=[validate_semver])
    major = models.PositiveIntegerField(editable=False, default=0)
    minor = models.PositiveIntegerField(editable=False, default=0)
    patch = models.PositiveIntegerField(editable=False, default=0)
    status = models.CharField(
        max_length=16, choices=KpiStatusChoices.choices, default=KpiStatusChoices.DRAFT, db_index=True
    )
    kind = models.CharField(max_length=12, choices=KpiKindChoices.choices, default=KpiKindChoices.SIMPLE)
    contract = models.ForeignKey(
        "host.DataContract", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The contract whose Golden Data Points are aggregated (not for derived KPIs).",
    )  # fmt: skip
    measure = models.CharField(max_length=200, blank=True, help_text="Measure (numerator of a ratio).")
    aggregation = models.CharField(
        max_length=16, choices=AggregationChoices.choices, default=AggregationChoices.SUM, blank=True
    )
    denominator_measure = models.CharField(max_length=200, blank=True)
    denominator_aggregation = models.CharField(max_length=16, choices=AggregationChoices.choices, blank=True)
    expression = models.TextField(
        blank=True, help_text="Derived KPIs: + - * / ( ) numbers and KPI keys, e.g. {net-sales} / {visits}."
    )
    cumulative_mode = models.CharField(max_length=16, choices=CumulativeModeChoices.choices, blank=True)
    window_periods = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(520)],
        help_text="Rolling: how many periods, this one included.",
    )  # fmt: skip
    filters = models.JSONField(default=dict, blank=True, help_text='{"dimension": value or [values]}')
    calendar = models.ForeignKey("storage.Calendar", on_delete=models.PROTECT, related_name="+")
    level = models.CharField(max_length=8, choices=GrainLevelChoices.choices, default=GrainLevelChoices.PERIOD)
    dimensions = models.JSONField(default=list, blank=True, help_text="Dimension fields to break down by.")
    unit = models.CharField(max_length=50, blank=True)
    display_format = models.CharField(
        max_length=8, choices=DisplayFormatChoices.choices, default=DisplayFormatChoices.NUMBER
    )
    decimals = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])
    direction = models.CharField(
        max_length=8, choices=DirectionChoices.choices, default=DirectionChoices.HIGHER_IS_BETTER
    )
    notes = models.TextField(blank=True, help_text="What changed and why.")
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    proposed_at = models.DateTimeField(null=True, blank=True, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    decision_comment = models.TextField(blank=True, editable=False)
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    computed_as_of = models.DateTimeField(null=True, blank=True, editable=False)
    computed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = KpiVersionQuerySet.as_manager()

    class Meta:
        ordering = ["definition", "-major", "-minor", "-patch"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "version"], name="compute_kpiversion_unique_version"),
            models.UniqueConstraint(
                fields=["definition"],
                condition=models.Q(status=KpiStatusChoices.ACTIVE),
                name="compute_kpiversion_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.definition.key} {self.version}"

    def save(self, *args: object, **kwargs: object) -> None:
        if SEMVER.match(self.version or ""):
            self.major, self.minor, self.patch = parse_semver(self.version)
        super().save(*args, **kwargs)

    @property
    def is_editable(self) -> bool:
        return self.status == KpiStatusChoices.DRAFT

    @property
    def key(self) -> str:
        return self.definition.key


class KpiTarget(TenantOwnedModel):
    """A governed target for a KPI: a value for a range of periods and, optionally, a dimension set.

    Applies to a computed value whose period lies within `period_from`..`period_to` (by dates, so a
    target survives a change of grain) and whose dimensions contain every pair of `dimensions`
    ({} = every dimension set). When several approved targets apply, the most specific wins (more
    dimension pairs, then the shorter range, then the later approval). Bands: with the KPI's
    direction, the shortfall against the target (absolute, or in % of the target) up to
    `green_within` is green, up to `amber_within` amber, beyond that red. Only approved targets
    count; they are proposed and approved by two different people, and never edited afterwards
    (retire one and propose another).
    """

    definition = models.ForeignKey(KpiDefinition, on_delete=models.CASCADE, related_name="targets")
    period_from = models.ForeignKey("storage.CalendarPeriod", on_delete=models.PROTECT, related_name="+")
    period_to = models.ForeignKey("storage.CalendarPeriod", on_delete=models.PROTECT, related_name="+")
    dimensions = models.JSONField(default=dict, blank=True, help_text='Optional, e.g. {"region": "north"}.')
    value = models.DecimalField(max_digits=30, decimal_places=10)
    tolerance_kind = models.CharField(
        max_length=8, choices=ToleranceKindChoices.choices, default=ToleranceKindChoices.PERCENT
    )
    green_within = models.DecimalField(
        max_digits=30, decimal_places=10, default=0, help_text="Shortfall still green (0 = target met)."
    )
    amber_within = models.DecimalField(max_digits=30, decimal_places=10, help_text="Shortfall still amber.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=TargetStatusChoices.choices, default=TargetStatusChoices.DRAFT, db_index=True
    )
    notes = models.TextField(blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    proposed_at = models.DateTimeField(null=True, blank=True, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    decision_comment = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["definition", "period_from__start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(green_within__gte=0, amber_within__gte=models.F("green_within")),
                name="compute_kpitarget_bands_ordered",
            )
        ]

    def __str__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in sorted((self.dimensions or {}).items()))
        return f"{self.definition.key} target {self.value}" + (f" ({dims})" if dims else "")

    @property
    def is_editable(self) -> bool:
        return self.status == TargetStatusChoices.DRAFT


class KpiTransitionQuerySet(TenantQuerySet):
    tenant_lookup = "definition__tenant"


class KpiTransition(models.Model):
    """One lifecycle step of a KPI version or target: who moved it from where to where, and why."""

    definition = models.ForeignKey(KpiDefinition, on_delete=models.CASCADE, related_name="transitions")
    version = models.ForeignKey(KpiVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="transitions")
    target = models.ForeignKey(KpiTarget, null=True, blank=True, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    objects = KpiTransitionQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(version__isnull=False, target__isnull=True)
                | models.Q(version__isnull=True, target__isnull=False),
                name="compute_kpitransition_one_subject",
            )
        ]

    def __str__(self) -> str:
        subject = self.version or self.target
        return f"{subject}: {self.from_status or '∅'} → {self.to_status}"
