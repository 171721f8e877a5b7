"""factory_boy factories, one per model, and the registry the generic isolation tests use.

Add a factory here for every new tenant-owned model: the tenant-isolation tests build
one row of each registered model in another tenant and fail on any model exposed
through the API or admin without a factory.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model

from apps.access.models import ApiToken
from apps.access.tokens import new_token
from apps.compute.models import Source
from apps.host.models import ContractVersion, DataContract, Membership, Policy, Tenant
from apps.kernel.roles import RoleChoices
from apps.runtime.models import DeadLetter, DomainEvent, JobRun
from apps.security.models import OutboundAllowRule
from apps.storage.models import GoldenDataPoint, IngestionBatch
from apps.utilities.models import RegisteredSchema, RegistryConfig, SchemaSubject, SchemaVersion
from apps.utilities.services import fingerprint as schema_fingerprint


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    timezone = "UTC"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "secret-pass-123")

    @factory.post_generation
    def _save(obj: Any, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = RoleChoices.STEWARD


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A token row; `token.plain` holds its usable bearer string."""

    class Meta:
        model = ApiToken

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    name = "test token"
    scopes = factory.LazyFunction(lambda: ["read", "write", "admin"])

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> ApiToken:
        plain, kwargs["prefix"], kwargs["secret_hash"] = new_token()
        token = super()._create(model_class, *args, **kwargs)
        token.plain = plain
        return token


class DomainEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DomainEvent

    tenant = factory.SubFactory(TenantFactory)
    type = "test.happened"
    payload = factory.LazyFunction(dict)


class DeadLetterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeadLetter

    event = factory.SubFactory(DomainEventFactory)
    handler = "tests.failing"
    attempts = 3
    error = "RuntimeError: boom"


class JobRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobRun

    task = "runtime.sweep_outbox"


# model → factory building one row owned by the given tenant.
TENANT_FACTORIES: dict[type, Any] = {
    Tenant: lambda tenant: tenant,
    Membership: lambda tenant: MembershipFactory(tenant=tenant),
    ApiToken: lambda tenant: ApiTokenFactory(
        tenant=tenant, user=MembershipFactory(tenant=tenant, role=RoleChoices.ADMIN).user
    ),
    DomainEvent: lambda tenant: DomainEventFactory(tenant=tenant),
    DeadLetter: lambda tenant: DeadLetterFactory(event=DomainEventFactory(tenant=tenant)),
}
# Platform-wide models (no tenant): non-superusers must not see them at all.
PLATFORM_FACTORIES: dict[type, Any] = {JobRun: lambda: JobRunFactory()}


# --- host: contracts and policies ------------------------------------------------------------
class DataContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataContract

    tenant = factory.SubFactory(TenantFactory)
    key = factory.Sequence(lambda n: f"dataset-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("-", " ").title())


class ContractVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContractVersion

    contract = factory.SubFactory(DataContractFactory)
    tenant = factory.SelfAttribute("contract.tenant")
    version = "1.0.0"


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Policy

    tenant = factory.SubFactory(TenantFactory)
    kind = "quality_gate"
    name = factory.Sequence(lambda n: f"policy {n}")
    parameters = factory.LazyFunction(lambda: {"min_batch_pass_rate": 90})


TENANT_FACTORIES.update(
    {
        DataContract: lambda tenant: DataContractFactory(tenant=tenant),
        ContractVersion: lambda tenant: ContractVersionFactory(contract=DataContractFactory(tenant=tenant)),
        Policy: lambda tenant: PolicyFactory(tenant=tenant),
    }
)


# --- utilities: schema registry ------------------------------------------------------------------
class SchemaSubjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SchemaSubject

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"topic-{n}-value")


class RegisteredSchemaFactory(factory.django.DjangoModelFactory):
    """A schema content; `fingerprint` is derived from `schema` as the registry computes it."""

    class Meta:
        model = RegisteredSchema

    tenant = factory.SubFactory(TenantFactory)
    schema = factory.Sequence(lambda n: {"type": "object", "title": f"schema {n}"})
    fingerprint = factory.LazyAttribute(lambda o: schema_fingerprint(o.schema))


class SchemaVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SchemaVersion

    subject = factory.SubFactory(SchemaSubjectFactory)
    version = factory.Sequence(lambda n: n + 1)
    schema = factory.SubFactory(RegisteredSchemaFactory, tenant=factory.SelfAttribute("..subject.tenant"))


class RegistryConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RegistryConfig
        django_get_or_create = ("tenant",)

    tenant = factory.SubFactory(TenantFactory)
    compatibility = "FULL"


TENANT_FACTORIES.update(
    {
        SchemaSubject: lambda tenant: SchemaVersionFactory(subject__tenant=tenant, version=1).subject,
        RegisteredSchema: lambda tenant: RegisteredSchemaFactory(tenant=tenant),
        SchemaVersion: lambda tenant: SchemaVersionFactory(subject__tenant=tenant, version=1),
        RegistryConfig: lambda tenant: RegistryConfigFactory(tenant=tenant),
    }
)


# --- security: outbound allow list ---------------------------------------------------------------
class OutboundAllowRuleFactory(factory.django.DjangoModelFactory):
    """A platform-wide rule unless `tenant_scope` is given."""

    class Meta:
        model = OutboundAllowRule

    host = factory.Sequence(lambda n: f"receiver-{n}.internal")
    note = "test receiver"


PLATFORM_FACTORIES[OutboundAllowRule] = lambda: OutboundAllowRuleFactory()


# --- compute and storage: sources, batches, Golden Data Points -------------------------------
class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source

    contract = factory.SubFactory(DataContractFactory)
    tenant = factory.SelfAttribute("contract.tenant")
    key = factory.Sequence(lambda n: f"source-{n}")
    name = factory.LazyAttribute(lambda o: o.key)


class IngestionBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IngestionBatch

    source = factory.SubFactory(SourceFactory)
    tenant = factory.SelfAttribute("source.tenant")
    format = "json"
    checksum = factory.Sequence(lambda n: f"{n:064x}")


class GoldenDataPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GoldenDataPoint

    batch = factory.SubFactory(IngestionBatchFactory)
    tenant = factory.SelfAttribute("batch.tenant")
    contract = factory.SelfAttribute("batch.source.contract")
    contract_version = factory.LazyAttribute(lambda o: ContractVersionFactory(contract=o.contract))
    source = factory.SelfAttribute("batch.source")
    measure = "revenue"
    entity_key = factory.Sequence(lambda n: f"E{n}")
    observed_at = factory.LazyFunction(lambda: datetime(2026, 11, 1, tzinfo=UTC))
    value = Decimal("1")
    recorded_from = factory.LazyFunction(lambda: datetime.now(UTC))


TENANT_FACTORIES.update(
    {
        Source: lambda tenant: SourceFactory(contract=DataContractFactory(tenant=tenant)),
        IngestionBatch: lambda tenant: IngestionBatchFactory(
            source=SourceFactory(contract=DataContractFactory(tenant=tenant))
        ),
        GoldenDataPoint: lambda tenant: GoldenDataPointFactory(
            batch=IngestionBatchFactory(source=SourceFactory(contract=DataContractFactory(tenant=tenant)))
        ),
    }
)


# --- compute and storage in the portal: raw records, pipeline runs, normalization rules ----------
class RawRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "storage.RawRecord"

    batch = factory.SubFactory(IngestionBatchFactory)
    tenant = factory.SelfAttribute("batch.tenant")
    position = factory.Sequence(lambda n: n)
    line = factory.LazyAttribute(lambda o: o.position + 1)
    payload = factory.LazyFunction(lambda: {"store_id": "S001", "revenue": 1})
    hash = factory.Sequence(lambda n: f"{n:064x}")
    received_at = factory.LazyFunction(lambda: datetime.now(UTC))


class PipelineRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "compute.PipelineRun"

    batch = factory.SubFactory(IngestionBatchFactory)
    tenant = factory.SelfAttribute("batch.tenant")


class NormalizationRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "compute.NormalizationRule"

    contract_version = factory.SubFactory(ContractVersionFactory)
    kind = "trim"
    field = "store_id"


def _batch_of(tenant: Any) -> Any:
    return IngestionBatchFactory(source=SourceFactory(contract=DataContractFactory(tenant=tenant)))


TENANT_FACTORIES.update(
    {
        RawRecordFactory._meta.get_model_class(): lambda tenant: RawRecordFactory(batch=_batch_of(tenant)),
        PipelineRunFactory._meta.get_model_class(): lambda tenant: PipelineRunFactory(batch=_batch_of(tenant)),
        NormalizationRuleFactory._meta.get_model_class(): lambda tenant: NormalizationRuleFactory(
            contract_version=ContractVersionFactory(contract=DataContractFactory(tenant=tenant))
        ),
    }
)


# --- trust: the evidence ledger ----------------------------------------------------------------
class EvidenceRecordFactory(factory.django.DjangoModelFactory):
    """An entry appended through the ledger's service, so sequence and hashes are right."""

    class Meta:
        model = "trust.EvidenceRecord"

    tenant = factory.SubFactory(TenantFactory)
    kind = "contract.approved"
    subject = factory.Sequence(lambda n: f"contract dataset-{n} 1.0.0")
    content = factory.LazyAttribute(lambda o: {"contract": o.subject.split()[1], "version": "1.0.0"})
    actor = None

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        from apps.trust.services import evidence_append

        return evidence_append(**kwargs)


TENANT_FACTORIES[EvidenceRecordFactory._meta.get_model_class()] = lambda tenant: EvidenceRecordFactory(tenant=tenant)


# --- storage: calendars, period tables, period states --------------------------------------------
class CalendarFactory(factory.django.DjangoModelFactory):
    """A tenant's Gregorian calendar; `tenant=None` makes a platform calendar (visible to every tenant)."""

    class Meta:
        model = "storage.Calendar"

    tenant = factory.SubFactory(TenantFactory)
    key = factory.Sequence(lambda n: f"calendar-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("-", " ").title())
    kind = "gregorian"


class CalendarPeriodFactory(factory.django.DjangoModelFactory):
    """One fiscal period row (real tables come from calendar_generate)."""

    class Meta:
        model = "storage.CalendarPeriod"

    calendar = factory.SubFactory(CalendarFactory)
    level = "period"
    start = date(2026, 1, 1)
    end = date(2026, 1, 31)
    label = factory.Sequence(lambda n: f"FY2026-P{n:02d}")
    fiscal_year = 2026
    number = 1
    index = factory.Sequence(lambda n: 2026 * 12 + n)
    year_label = "FY2026"


class PeriodStateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "storage.PeriodState"

    period = factory.SubFactory(CalendarPeriodFactory)
    tenant = factory.SelfAttribute("period.calendar.tenant")
    state = "soft_closed"
    changed_at = factory.LazyFunction(lambda: datetime.now(UTC))


def _calendar_of(tenant: Any) -> Any:
    return CalendarFactory(tenant=tenant)


TENANT_FACTORIES.update(
    {
        CalendarFactory._meta.get_model_class(): lambda tenant: _calendar_of(tenant),
        CalendarPeriodFactory._meta.get_model_class(): lambda tenant: CalendarPeriodFactory(
            calendar=_calendar_of(tenant)
        ),
        PeriodStateFactory._meta.get_model_class(): lambda tenant: PeriodStateFactory(
            tenant=tenant, period=CalendarPeriodFactory(calendar=_calendar_of(tenant))
        ),
    }
)
# Platform calendars (no tenant) are not PLATFORM_FACTORIES material: tenants do see them, read-only.
# tests/storage/test_calendars.py covers them (listed and readable by every tenant, writes refused).


# --- consumption: webhooks ------------------------------------------------------------------------
def _webhook_secret() -> str:
    from apps.consumption.webhooks.signing import new_secret

    return new_secret()


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """An endpoint row made directly (no URL check: the host does not need to resolve)."""

    class Meta:
        model = "consumption.WebhookEndpoint"

    tenant = factory.SubFactory(TenantFactory)
    url = factory.Sequence(lambda n: f"https://receiver-{n}.example.com/hooks")
    event_types = factory.LazyFunction(lambda: ["kpi.published"])
    secret = factory.LazyFunction(lambda: _webhook_secret())


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    """A finished (failed) delivery, so that it can be redelivered."""

    class Meta:
        model = "consumption.WebhookDelivery"

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    tenant = factory.SelfAttribute("endpoint.tenant")
    event_type = "kpi.published"
    message_id = factory.Sequence(lambda n: f"msg_factory{n:013d}")
    body = '{"data":{},"timestamp":"2026-01-01T00:00:00+00:00","type":"kpi.published"}'
    status = "failed"
    attempt_count = 1
    last_status_code = 500


class WebhookAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "consumption.WebhookAttempt"

    delivery = factory.SubFactory(WebhookDeliveryFactory)
    number = 1
    started_at = factory.LazyFunction(lambda: datetime.now(UTC))
    status_code = 500


TENANT_FACTORIES.update(
    {
        WebhookEndpointFactory._meta.get_model_class(): lambda tenant: WebhookEndpointFactory(tenant=tenant),
        WebhookDeliveryFactory._meta.get_model_class(): lambda tenant: WebhookDeliveryFactory(
            endpoint=WebhookEndpointFactory(tenant=tenant)
        ),
        WebhookAttemptFactory._meta.get_model_class(): lambda tenant: WebhookAttemptFactory(
            delivery=WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=tenant))
        ),
    }
)


# --- consumption and utilities: the data product catalog and its search index ----------------------
class DataProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "consumption.DataProduct"

    contract = factory.SubFactory(DataContractFactory)
    tenant = factory.SelfAttribute("contract.tenant")
    slug = factory.Sequence(lambda n: f"product-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    kind = "gdp_dataset"
    visibility = "listed"
    status = "published"


class SearchDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "utilities.SearchDocument"

    tenant = factory.SubFactory(TenantFactory)
    kind = "product"
    object_key = factory.Sequence(lambda n: f"doc-{n}")
    title = factory.LazyAttribute(lambda o: f"Document {o.object_key}")
    title_terms = factory.LazyAttribute(lambda o: o.title.lower())
    terms = factory.LazyAttribute(lambda o: o.title.lower())


TENANT_FACTORIES.update(
    {
        DataProductFactory._meta.get_model_class(): lambda tenant: DataProductFactory(
            contract=DataContractFactory(tenant=tenant)
        ),
        SearchDocumentFactory._meta.get_model_class(): lambda tenant: SearchDocumentFactory(tenant=tenant),
    }
)


# --- consumption: exports --------------------------------------------------------------------------
class ExportJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "consumption.ExportJob"

    tenant = factory.SubFactory(TenantFactory)
    dataset = "gdps"
    format = "csv"
    mode = "job"
    status = "completed"
    row_count = 0


TENANT_FACTORIES[ExportJobFactory._meta.get_model_class()] = lambda tenant: ExportJobFactory(tenant=tenant)


# --- compute and storage: KPI publications, publication requests, restatements ----------------------
def _publication_kpi_version(tenant: Any) -> Any:
    """An active KPI version of the tenant (made directly: publication rows only need one to point at)."""
    from apps.compute.kpis.models import KpiDefinition, KpiVersion

    definition = KpiDefinition.objects.create(tenant=tenant, key=f"published-{KpiDefinition.objects.count()}",
                                              name="Published KPI")  # fmt: skip
    return KpiVersion.objects.create(tenant=tenant, definition=definition, version="1.0.0", status="active",
                                     calendar=CalendarFactory(tenant=tenant), measure="revenue")  # fmt: skip


class PublishedOutputFactory(factory.django.DjangoModelFactory):
    """A published output of one period (the hash is taken from its values, as the write takes it)."""

    class Meta:
        model = "storage.PublishedOutput"

    tenant = factory.SubFactory(TenantFactory)
    kpi_version = factory.LazyAttribute(lambda o: _publication_kpi_version(o.tenant))
    kpi_key = factory.LazyAttribute(lambda o: o.kpi_version.definition.key)
    kpi_version_label = "1.0.0"
    version = factory.Sequence(lambda n: n + 1)
    kind = "publication"
    period_ids = factory.LazyFunction(list)
    period_labels = factory.LazyFunction(list)
    values = factory.LazyFunction(list)
    as_of = factory.LazyFunction(lambda: datetime.now(UTC))
    content_hash = "0" * 64
    published_at = factory.LazyFunction(lambda: datetime.now(UTC))


class PublicationRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "compute.PublicationRequest"

    tenant = factory.SubFactory(TenantFactory)
    kpi_version = factory.LazyAttribute(lambda o: _publication_kpi_version(o.tenant))
    period_labels = factory.LazyFunction(lambda: ["2026-01"])


class RestatementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "compute.Restatement"

    tenant = factory.SubFactory(TenantFactory)
    supersedes = factory.LazyAttribute(lambda o: PublishedOutputFactory(tenant=o.tenant))
    kpi_version = factory.LazyAttribute(lambda o: o.supersedes.kpi_version)
    kpi_key = factory.LazyAttribute(lambda o: o.supersedes.kpi_key)
    as_of = factory.LazyFunction(lambda: datetime.now(UTC))
    proposed_at = factory.LazyFunction(lambda: datetime.now(UTC))
    diff = factory.LazyFunction(lambda: [{"period": "2026-01", "period_id": 1, "dimensions": {}, "dimensions_key": "[]",
                                          "old": "1", "new": "2", "delta": "1"}])  # fmt: skip


TENANT_FACTORIES.update(
    {
        PublishedOutputFactory._meta.get_model_class(): lambda tenant: PublishedOutputFactory(tenant=tenant),
        PublicationRequestFactory._meta.get_model_class(): lambda tenant: PublicationRequestFactory(tenant=tenant),
        RestatementFactory._meta.get_model_class(): lambda tenant: RestatementFactory(tenant=tenant),
    }
)


# --- compute: governed KPIs (definitions, versions, targets) and storage's KPI values ----------------
class KpiDefinitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "compute.KpiDefinition"

    tenant = factory.SubFactory(TenantFactory)
    key = factory.Sequence(lambda n: f"kpi-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("-", " ").title())


class KpiVersionFactory(factory.django.DjangoModelFactory):
    """A draft simple version (sum of 'revenue') on a contract and a calendar of the same tenant."""

    class Meta:
        model = "compute.KpiVersion"

    definition = factory.SubFactory(KpiDefinitionFactory)
    tenant = factory.SelfAttribute("definition.tenant")
    version = "1.0.0"
    contract = factory.LazyAttribute(lambda o: DataContractFactory(tenant=o.tenant))
    calendar = factory.LazyAttribute(lambda o: CalendarFactory(tenant=o.tenant))
    measure = "revenue"


class KpiTargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "compute.KpiTarget"

    definition = factory.SubFactory(KpiDefinitionFactory)
    tenant = factory.SelfAttribute("definition.tenant")
    period_from = factory.LazyAttribute(lambda o: CalendarPeriodFactory(calendar=CalendarFactory(tenant=o.tenant)))
    period_to = factory.SelfAttribute("period_from")
    value = Decimal("100")
    amber_within = Decimal("10")


class KpiValueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "storage.KpiValue"

    kpi_version = factory.SubFactory(KpiVersionFactory)
    tenant = factory.SelfAttribute("kpi_version.tenant")
    kpi_key = factory.SelfAttribute("kpi_version.definition.key")
    period = factory.LazyAttribute(lambda o: CalendarPeriodFactory(calendar=o.kpi_version.calendar))
    period_index = factory.SelfAttribute("period.index")
    dimensions_key = "[]"
    actual = Decimal("1")
    as_of = factory.LazyFunction(lambda: datetime.now(UTC))
    computed_at = factory.LazyFunction(lambda: datetime.now(UTC))


TENANT_FACTORIES.update(
    {
        KpiDefinitionFactory._meta.get_model_class(): lambda tenant: KpiDefinitionFactory(tenant=tenant),
        KpiVersionFactory._meta.get_model_class(): lambda tenant: KpiVersionFactory(
            definition=KpiDefinitionFactory(tenant=tenant)
        ),
        KpiTargetFactory._meta.get_model_class(): lambda tenant: KpiTargetFactory(
            definition=KpiDefinitionFactory(tenant=tenant)
        ),
        # Values of active versions are what the API lists by default; the admin lists values of any
        # version that was ever active.
        KpiValueFactory._meta.get_model_class(): lambda tenant: KpiValueFactory(
            kpi_version=KpiVersionFactory(definition=KpiDefinitionFactory(tenant=tenant), status="active")
        ),
    }
)
