from django.db import models

from apps.kernel.roles import RoleChoices

__all__ = ["RoleChoices", "TenantStatusChoices"]


class TenantStatusChoices(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class ContractStatusChoices(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"


class LogicalTypeChoices(models.TextChoices):
    STRING = "string", "String"
    INTEGER = "integer", "Integer"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Boolean"
    DATE = "date", "Date"
    TIMESTAMP = "timestamp", "Timestamp"
    OBJECT = "object", "Object"
    ARRAY = "array", "Array"


class ClassificationChoices(models.TextChoices):
    """Sensitivity levels, least sensitive first (the order is used for ceilings)."""

    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


CLASSIFICATION_RANK = {value: rank for rank, value in enumerate(ClassificationChoices.values)}


class FieldRoleChoices(models.TextChoices):
    """What a field is to the data pipeline: how records become Golden Data Points."""

    TIME = "time", "Time (observed at)"
    ENTITY_KEY = "entity_key", "Entity key"
    DIMENSION = "dimension", "Dimension"
    MEASURE = "measure", "Measure"
    ATTRIBUTE = "attribute", "Attribute"


class QualityRuleKindChoices(models.TextChoices):
    NOT_NULL = "not_null", "Not null"
    UNIQUE = "unique", "Unique"
    ALLOWED_VALUES = "allowed_values", "Allowed values"
    RANGE = "range", "Range"
    PATTERN = "pattern", "Pattern"
    ROW_COUNT = "row_count", "Row count range"
    DUPLICATE_RATIO = "duplicate_ratio", "Duplicate ratio"
    FRESHNESS = "freshness", "Freshness"
    COMPLETENESS = "completeness", "Completeness"


class SeverityChoices(models.TextChoices):
    ERROR = "error", "Error (rejects)"
    WARNING = "warning", "Warning (reports)"


class PolicyKindChoices(models.TextChoices):
    RETENTION = "retention", "Retention"
    CLASSIFICATION_HANDLING = "classification_handling", "Classification handling"
    QUALITY_GATE = "quality_gate", "Quality gate"
    PUBLICATION_APPROVAL = "publication_approval", "Publication approval"
    EXPORT_CONTROL = "export_control", "Export control"
    LINEAGE_OBLIGATION = "lineage_obligation", "Lineage obligation"


class PolicyStatusChoices(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class SurvivorshipChoices(models.TextChoices):
    LATEST = "latest", "Latest recorded wins"
    SOURCE_PRIORITY = "source_priority", "Highest source priority wins (ties: latest)"
