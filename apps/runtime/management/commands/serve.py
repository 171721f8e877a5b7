"""manage.py serve: the portal plus the background processes this configuration needs.

Embedded (no broker configured): runserver and Celery beat; beat executes due jobs in its
own process because tasks run eagerly. With a real broker: runserver, beat and a worker.
Used by `make run`; production runs gunicorn, workers and beat as separate services.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the portal with Celery beat (and a worker when a broker is configured)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-background", action="store_true", help="Only the web server.")

    def handle(self, *args: Any, addrport: str, no_background: bool, **options: Any) -> None:
        # A SIGTERM (from a supervisor or `timeout`) unwinds like Ctrl-C, so the finally
        # below stops the background processes instead of orphaning them.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        children: list[subprocess.Popen[bytes]] = []
        # Django's autoreloader re-runs this command in a child (RUN_MAIN=true): start the
        # background processes once, in the outer process.
        if not no_background and os.environ.get("RUN_MAIN") != "true":
            children = self._start_background()
        try:
            call_command("runserver", addrport)
        finally:
            for child in children:
                child.terminate()
            for child in children:
                child.wait(timeout=10)

    def _start_background(self) -> list[subprocess.Popen[bytes]]:
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        commands = [[*celery, "beat", "--loglevel", "warning", "--pidfile", ""]]
        if not settings.CELERY_EMBEDDED:
            commands.append([*celery, "worker", "--loglevel", "info", "--concurrency", "2"])
        mode = "embedded: beat runs due jobs itself" if settings.CELERY_EMBEDDED else "broker: beat + worker"
        self.stdout.write(f"Starting Celery ({mode}).")
        return [subprocess.Popen(command) for command in commands]  # noqa: S603 (fixed argv)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
