from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.kernel.admin import ReadOnlyTenantScopedAdmin
from apps.kernel.roles import RoleChoices
from apps.runtime import services
from apps.runtime.models import DeadLetter, DomainEvent, JobRun


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyTenantScopedAdmin):
    view_roles = frozenset({RoleChoices.ADMIN, RoleChoices.AUDITOR})
    list_display = ("type", "tenant", "actor", "occurred_at", "dispatched_at")
    list_filter = ("type", ("dispatched_at", admin.EmptyFieldListFilter))
    search_fields = ("=id", "type")
    date_hierarchy = "occurred_at"
    list_select_related = ("tenant", "actor")
    show_full_result_count = False  # the outbox grows large; avoid COUNT(*) on every page


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyTenantScopedAdmin):
    tenant_lookup = "event__tenant"
    view_roles = frozenset({RoleChoices.ADMIN, RoleChoices.AUDITOR})
    replay_roles = frozenset({RoleChoices.ADMIN})
    list_display = ("handler", "event", "attempts", "status", "created_at", "replayed_at")
    list_filter = ("status", "handler")
    list_select_related = ("event",)
    readonly_fields = ("event", "handler", "attempts", "error", "traceback", "status", "replayed_at", "replayed_by")
    actions = ["replay"]

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.replay_roles)

    @admin.action(description="Replay the selected dead letters", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        letters = list(queryset.filter(status="pending"))
        for letter in letters:
            services.dead_letter_replay(actor=request.user, dead_letter=letter)
        self.message_user(request, f"Replaying {len(letters)} dead letter(s).", messages.SUCCESS)


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    """Platform jobs: visible to operators (superusers or users granted the model permission)."""

    list_display = ("task", "status", "started_at", "finished_at", "duration")
    list_filter = ("status", "task")
    readonly_fields = ("task", "status", "started_at", "finished_at", "detail", "error")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Duration (s)")
    def duration(self, obj: JobRun) -> str:
        seconds = obj.duration_seconds
        return "—" if seconds is None else f"{seconds:.2f}"
