from django.db import models


class BatchStatusChoices(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_REJECTIONS = "completed_with_rejections", "Completed with rejections"
    REFUSED = "refused", "Refused by the quality gate"
    FAILED = "failed", "Failed"


FINAL_BATCH_STATUSES = frozenset(
    {
        BatchStatusChoices.COMPLETED,
        BatchStatusChoices.COMPLETED_WITH_REJECTIONS,
        BatchStatusChoices.REFUSED,
        BatchStatusChoices.FAILED,
    }
)


class PayloadFormatChoices(models.TextChoices):
    JSON = "json", "JSON array"
    NDJSON = "ndjson", "NDJSON (one JSON object per line)"
    CSV = "csv", "CSV with a header row"


class RejectionSeverityChoices(models.TextChoices):
    ERROR = "error", "Error (record rejected)"
    WARNING = "warning", "Warning (record accepted, reported)"
