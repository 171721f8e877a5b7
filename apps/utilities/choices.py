from django.db import models


class CompatibilityChoices(models.TextChoices):
    """Confluent Schema Registry compatibility levels (semantics in compatibility.py)."""

    NONE = "NONE", "None: any change is accepted"
    BACKWARD = "BACKWARD", "Backward: the new schema reads data of the latest version"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE", "Backward, against every version"
    FORWARD = "FORWARD", "Forward: the latest version reads data of the new schema"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE", "Forward, against every version"
    FULL = "FULL", "Full: backward and forward against the latest"
    FULL_TRANSITIVE = "FULL_TRANSITIVE", "Full, against every version"


DEFAULT_COMPATIBILITY = CompatibilityChoices.BACKWARD
