"""manage.py migrate_phase {pre-deploy|post-deploy|deferred}: apply one deploy phase's migrations.

Exit codes: 0 done or nothing to do, 1 a migration refused or failed, 2 usage, 3 runner lock not obtained.
"""
from __future__ import annotations

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils.connection import ConnectionDoesNotExist

from migration_safe.deploy import report
from migration_safe.deploy.apply import RetryPolicy
from migration_safe.deploy.retry import Backoff
from migration_safe.deploy.runner import Options, run
from migration_safe.engine.model import Phase

USAGE = 2
DEPLOY_STATEMENT_TIMEOUT = 300.0  # seconds; the deferred phase has none


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 86400 seconds")
    return value


def count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1000")
    return value


class Command(BaseCommand):
    help = ("Apply the unapplied migrations of one deploy phase, in Django's plan order, with a short "
            "lock_timeout, retries, and one runner per database at a time.")
    requires_system_checks = []  # a deploy step: the project's checks run elsewhere

    def add_arguments(self, parser):
        parser.add_argument("phase", choices=[p.value for p in Phase])
        parser.add_argument("--plan", action="store_true",
                            help="print what would run and what would be refused; change nothing")
        parser.add_argument("--format", choices=("text", "json"), default="text")
        parser.add_argument("--database", default="default", help="database alias (default: default)")
        parser.add_argument("--lock-timeout", type=seconds, default=2.0,
                            help="lock_timeout of each statement, seconds (default 2)")
        parser.add_argument("--statement-timeout", type=seconds, default=None,
                            help=f"statement_timeout, seconds; 0 for none (default "
                                 f"{DEPLOY_STATEMENT_TIMEOUT:g} before and after the deploy, none in deferred)")
        parser.add_argument("--retries", type=count, default=10,
                            help="retries of a migration that hit the lock timeout (default 10)")
        parser.add_argument("--backoff", type=seconds, default=1.0,
                            help="wait before the first retry, seconds; doubles each retry up to 30 s, "
                                 "with jitter (default 1)")
        parser.add_argument("--wait-for-lock", type=seconds, default=0.0,
                            help="how long to wait for another runner to finish, seconds (default 0)")

    def handle(self, *args, **options):
        run_options = self._options(options)
        connection = self._connection(run_options.database)
        text = options["format"] == "text"
        shown = text and not run_options.plan_only

        def on_step(step):
            if shown:
                self.stdout.write(report.step_line(step))
                self.stdout.flush()  # a deploy log shows progress as it happens, even through a pipe

        def log(message):
            if text:
                self.stdout.write(f"  {message}")
                self.stdout.flush()

        result = run(run_options, connection, on_step, log, options["verbosity"] if text else 0)
        if text:
            for line in report.summary_lines(result, steps_shown=shown):
                self.stdout.write(line)
        else:
            self.stdout.write(report.as_json(result))
        if result.exit_code:  # a CommandError, not SystemExit: call_command from a task queue catches it
            raise CommandError(f"migrate_phase {run_options.phase.value}: {result.outcome}",
                               returncode=result.exit_code)

    def _options(self, options) -> Options:
        phase = Phase.parse(options["phase"])
        statement_timeout = options["statement_timeout"]
        if statement_timeout is None:
            statement_timeout = None if phase is Phase.DEFERRED else DEPLOY_STATEMENT_TIMEOUT
        statement_timeout = statement_timeout or None
        lock_timeout = options["lock_timeout"]
        if not lock_timeout:
            raise CommandError("--lock-timeout must be more than 0: without it a migration waiting for a "
                               "lock queues every query on the table behind it", returncode=USAGE)
        if statement_timeout and lock_timeout >= statement_timeout:
            raise CommandError("--lock-timeout must be shorter than --statement-timeout, which would "
                               "end the wait first", returncode=USAGE)
        return Options(
            phase=phase, database=options["database"], lock_timeout=lock_timeout,
            statement_timeout=statement_timeout, wait_for_lock=options["wait_for_lock"],
            retry=RetryPolicy(options["retries"], Backoff(options["backoff"])),
            plan_only=options["plan"], declared=declared_phases())

    def _connection(self, alias: str):
        try:
            connection = connections[alias]
        except ConnectionDoesNotExist:
            raise CommandError(f"no database {alias!r} in settings.DATABASES", returncode=USAGE) from None
        if connection.vendor != "postgresql":
            raise CommandError(f"database {alias!r} is {connection.vendor}: migrate_phase needs PostgreSQL",
                               returncode=USAGE)
        return connection


def declared_phases() -> dict[str, Phase]:
    """settings.MIGRATION_SAFE_DEPLOY_PHASES: {"app.migration": "phase"} for files one does not edit."""
    value = getattr(settings, "MIGRATION_SAFE_DEPLOY_PHASES", {})
    if not isinstance(value, dict):
        raise CommandError("settings.MIGRATION_SAFE_DEPLOY_PHASES must be a dict of "
                           '{"app.migration": "phase"}', returncode=USAGE)
    phases = {}
    for label, phase in value.items():
        try:
            if not isinstance(label, str) or "." not in label or not isinstance(phase, str):
                raise ValueError("expected \"app.migration\": \"phase\"")
            phases[label] = Phase.parse(phase)
        except ValueError as exc:
            raise CommandError(f"settings.MIGRATION_SAFE_DEPLOY_PHASES[{label!r}]: {exc}",
                               returncode=USAGE) from None
    return phases
