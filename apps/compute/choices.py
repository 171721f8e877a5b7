from django.db import models


class SourceKindChoices(models.TextChoices):
    PUSH = "push", "Push (API)"
    UPLOAD = "upload", "File upload (portal)"
    PULL = "pull", "Scheduled pull (HTTP)"


class NormalizationKindChoices(models.TextChoices):
    RENAME = "rename", "Rename field"
    CAST = "cast", "Cast type"
    CONVERT_UNIT = "convert_unit", "Convert unit"
    TRIM = "trim", "Trim whitespace"
    CASE = "case", "Change case"
    MAP_CODES = "map_codes", "Map codes"
    DEFAULT = "default", "Default value"
    DERIVE = "derive", "Derive with an expression"


class PipelineRunStatusChoices(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
