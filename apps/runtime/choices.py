from django.db import models


class JobRunStatusChoices(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class DeadLetterStatusChoices(models.TextChoices):
    PENDING = "pending", "Waiting for replay"
    REPLAYED = "replayed", "Replayed"
