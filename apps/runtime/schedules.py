"""Creates the periodic jobs the modules declare, in django-celery-beat, after migrate."""

from __future__ import annotations

from typing import Any

from apps.kernel.modules import module_apps


def ensure_module_schedules(**_kwargs: Any) -> list[str]:
    """Create each declared schedule that does not exist yet; return the names created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = []
    for config in module_apps():
        for schedule in config.descriptor.schedules:
            if PeriodicTask.objects.filter(name=schedule.name).exists():
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=schedule.every_seconds, period=IntervalSchedule.SECONDS
            )
            PeriodicTask.objects.create(name=schedule.name, task=schedule.task, interval=interval)
            created.append(schedule.name)
    return created
