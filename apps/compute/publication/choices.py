"""Choices of publication requests and restatements."""

from __future__ import annotations

from django.db import models


class PublicationRequestStatusChoices(models.TextChoices):
    PENDING = "pending", "Pending approval"
    PUBLISHED = "published", "Published"
    REJECTED = "rejected", "Rejected"


class RestatementStatusChoices(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
