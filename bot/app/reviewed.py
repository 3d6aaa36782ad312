"""A finished review of a pull request's head, with what fixing it needs: shared by the App's worker,
`migration-safe ci` and the slash commands, which answer from it."""
from __future__ import annotations

from dataclasses import dataclass

from migration_safe.config import Config
from migration_safe.engine.fix.models_rewrite import Snapshot
from migration_safe.engine.fix.plan import FixPlan, plan_fixes
from migration_safe.engine.model import Review


@dataclass(frozen=True)
class Reviewed:
    review: Review
    config: Config  # the head's `.github/migration-safe.yml`
    safer: bool = False  # the head uses django-pg-migration-tools
    models: Snapshot | None = None  # the head's models modules, which fixes keep in step

    def fixes(self, only: set[str] | None = None) -> FixPlan:
        """The files `migration-safe fix` would write on the head's tree, so that a suggestion, a
        split and a push never differ from what the CLI gives the same people."""
        return plan_fixes(self.review, only=only, config=self.config, safer=self.safer, tree=self.models)
