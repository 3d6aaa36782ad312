"""Several databases: where DATABASE_ROUTERS choose, `migrate --database ALIAS` runs on each alias
only the operations its routers allow there, on that database's own tables. Each alias is judged
on its own (its operations, its `tables.stats` and `tables.large`), and the verdicts of one
migration merge into one that names the alias of every operation and finding."""
from __future__ import annotations

from migration_safe.config import Config
from migration_safe.engine.model import Acknowledgement, AliasVerdict, MigrationFile, MigrationVerdict, PhaseOverride
from migration_safe.engine.review.verdict import Analysed, decide
from migration_safe.engine.sandbox.protocol import MigrationRecord, ReviewAnswer


def several(answer: ReviewAnswer | None) -> bool:
    return bool(answer) and len(answer.get("aliases") or ()) > 1


def on_alias(answer: ReviewAnswer, alias: str) -> ReviewAnswer:
    """The answer as if only `alias` had been reviewed: the migrations that run there, with the
    operations its routers allow. A migration no router lets run anywhere stays on the first alias
    (`default`, as `sqlmigrate` without --database shows it: without SQL)."""
    records = []
    for record in answer["migrations"]:
        if record.get("alias") != alias:
            continue
        allowed = [op for op in record["operations"] if op.get("allowed", True)]
        if allowed or (alias == first_alias(answer) and runs_nowhere(answer, record)):
            records.append({**record, "operations": allowed or record["operations"]})
    return {**answer, "migrations": records}


def first_alias(answer: ReviewAnswer) -> str:
    return "default" if "default" in answer["aliases"] else answer["aliases"][0]


def runs_nowhere(answer: ReviewAnswer, record: MigrationRecord) -> bool:
    return not any(op.get("allowed", True) for other in answer["migrations"] for op in other["operations"]
                   if (other["app_label"], other["name"]) == (record["app_label"], record["name"]))


def reviewed_paths(answer: ReviewAnswer) -> set[str]:
    """The files of the migrations the (per-alias) answer reviewed."""
    files = answer["migration_files"]
    return {files.get(f"{record['app_label']}.{record['name']}") for record in answer["migrations"]} - {None}


def decide_each(files: list[MigrationFile], items: list[tuple[str | None, Analysed]], config: Config,
                pg_major: int, acknowledgements: list[Acknowledgement], overrides: dict[str, PhaseOverride],
                django_version: str | None) -> list[MigrationVerdict]:
    """One verdict per migration of `files`: each alias's migrations judged together (alias None:
    those no alias reviewed, judged from the file alone), then merged in the order of `items`."""
    groups: dict[str | None, list[Analysed]] = {}
    for alias, item in items:
        groups.setdefault(alias, []).append(item)
    parts: dict[int, list[tuple[str | None, MigrationVerdict]]] = {}
    for alias, group in groups.items():
        on = config if alias is None else config.for_alias(alias)
        for verdict in decide(group, on, pg_major, acknowledgements, overrides, django_version):
            for item in [*verdict.operations, *verdict.findings]:
                item.alias = alias
            parts.setdefault(id(verdict.file), []).append((alias, verdict))
    return [merged(file, parts[id(file)]) for file in files]


def merged(file: MigrationFile, parts: list[tuple[str | None, MigrationVerdict]]) -> MigrationVerdict:
    """The migration's verdict over its aliases (each alias's own is in `aliases`): their common
    phase, or a split when one alias mixes phases or the aliases' phases differ."""
    if [alias for alias, _verdict in parts] == [None]:
        return parts[0][1]
    verdicts = [verdict for _alias, verdict in parts]
    # One migration declares one phase, and `migrate --database` applies all of it on each database:
    # aliases in different phases are a mix like any other.
    phases = {v.phase for v in verdicts if v.phase is not None}
    split = any(v.needs_split for v in verdicts) or len(phases) > 1
    return MigrationVerdict(
        file=file, operations=[op for v in verdicts for op in v.operations],
        findings=[f for v in verdicts for f in v.findings],
        phase=None if split else next(iter(phases), None), needs_split=split,
        sql_status="ok" if all(v.sql_status == "ok" for v in verdicts) else "unavailable",
        sql_error=next((v.sql_error for v in verdicts if v.sql_error), None),
        phase_override=next((v.phase_override for v in verdicts if v.phase_override), None),
        aliases=[AliasVerdict(alias, v.phase, v.needs_split, v.blocking) for alias, v in parts])
