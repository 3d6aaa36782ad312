"""Squashed migrations: what Django does with them where the base branch is deployed.

A squash whose replaced migrations are all applied there is recorded as applied and runs nothing;
one with only some of them applied gives way to the rest of them; the child resolves this with
Django's own loader (SquashRecord). Deleting the replaced migrations is read here, from git: it
needs every environment to have applied the squash.
"""
from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath
from typing import Callable

from migration_safe.engine.model import MigrationFile, Squash
from migration_safe.engine.review import discover
from migration_safe.engine.review.parse import parse_migration
from migration_safe.engine.review.verdict import Analysed
from migration_safe.engine.sandbox import confined
from migration_safe.engine.sandbox.protocol import DeletedMigration, ReviewAnswer, SquashRecord

BASE_FILE_CAP = 4 << 20


def with_deletions(repo: Path, base: str, head: str, deleted: list[str], tree: Path, files: list[MigrationFile],
                   label: Callable[[str], str]) -> list[MigrationFile]:
    """`files`, each squash among them told which of its replaced migrations the change deletes; a
    squash of the base that the change leaves as it is joins them ("unchanged") when it deletes some
    of its replaced migrations, and so does one whose only edit drops its `replaces` (the step
    Django's documentation gives with the deletion). `deleted`: the Python files the change deletes;
    `label`: a migration path's app label."""
    paths = {f"{label(path)}.{PurePosixPath(path).stem}": path for path in deleted if is_migration_path(path)}
    if not paths:
        return files
    out = list(files)
    fork = discover.fork_point(repo, base, head)
    for file in out:  # a new squash that deletes its replaced migrations at once
        file.deleted_replaces = {name: base_text(repo, fork, paths[name])
                                 for name in sorted(paths.keys() & labels(file.replaces))}
    remaining = paths.keys() - {name for file in out for name in file.deleted_replaces}
    by_path = {file.path: file for file in out}
    folders = sorted({str(PurePosixPath(path).parent) for path in paths.values()})
    for path, text in base_squashes(repo, fork, folders) if remaining else []:
        base_file = parse_migration(text, path, label(path), PurePosixPath(path).stem)
        replaced = sorted(remaining & labels(base_file.replaces))
        head_file = by_path.get(path) or head_migration(tree, path, label)
        if replaced and head_file is not None:
            head_file.deleted_replaces = dict.fromkeys(replaced, "")
            if head_file.status == "modified" and only_replaces_dropped(text, head_file.source):
                head_file.status = "unchanged"
            if path not in by_path:
                out.append(head_file)
                by_path[path] = head_file
    return out


def is_migration_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return "migrations" in parts[:-1] and parts[-1] != "__init__.py"


def labels(keys: list[tuple[str, str]]) -> set[str]:
    return {f"{app}.{name}" for app, name in keys}


def base_squashes(repo: Path, fork: str, folders: list[str]) -> list[tuple[str, str]]:
    """(path, text) of the files in `folders` at the fork point that mention `replaces`."""
    try:
        listed = discover.git(repo, "grep", "-l", "-z", "-F", "-e", "replaces", fork, "--", *folders)
    except discover.GitError:  # no file matches (git grep exits 1)
        return []
    out = []
    for entry in filter(None, listed.split("\0")):
        path = entry.removeprefix(f"{fork}:")
        if path.endswith(".py"):
            out.append((path, base_text(repo, fork, path)))
    return out


def base_text(repo: Path, fork: str, path: str) -> str:
    """A file as the fork point has it ("" when larger than a migration can reasonably be)."""
    if int(discover.git(repo, "cat-file", "-s", f"{fork}:{path}")) > BASE_FILE_CAP:
        return ""
    return discover.git(repo, "show", f"{fork}:{path}")


def only_replaces_dropped(base: str, head: str) -> bool:
    before = without_replaces(base)
    return before is not None and before == without_replaces(head)


def without_replaces(text: str) -> str | None:
    """The module's syntax tree with the Migration class's `replaces` left out (None: no syntax)."""
    try:
        module = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(module):
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            node.body = [s for s in node.body if not (isinstance(s, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "replaces" for t in s.targets))]
    return ast.dump(module)


def head_migration(tree: Path, path: str, label: Callable[[str], str]) -> MigrationFile | None:
    """The head's version of a file the change does not touch, or None when the change deleted it."""
    try:
        text = confined.read_text(tree, path)
    except (OSError, confined.Refused, UnicodeDecodeError):
        return None
    file = parse_migration(text, path, label(path), PurePosixPath(path).stem, "unchanged")
    file.source = text
    return file


def deleted_migrations(files: list[MigrationFile]) -> list[DeletedMigration]:
    """The deleted migrations that a new squash replaces, for the child: they are applied where the
    base is deployed, and the squash's state is compared with theirs."""
    return [{"app_label": name.split(".", 1)[0], "name": name.split(".", 1)[1], "source": text}
            for file in files for name, text in file.deleted_replaces.items()]


def resolve(item: Analysed, answer: ReviewAnswer | None, tree: Path) -> Analysed:
    """The migration as Django runs it where the base is deployed: a squash that runs nothing there,
    or a new migration a squash replaces, has no operations to judge."""
    path = str((tree / item.file.path).resolve())
    record = next((r for r in (answer or {}).get("squashes", []) if r["path"] == path), None)
    if any(r["path"] == path for r in (answer or {}).get("replaced", [])):
        return Analysed(item.file, [], sql_known=True)
    if record is None and not item.file.deleted_replaces:
        return item
    squash = from_record(record) if record else Squash(replaces=sorted(labels(item.file.replaces)))
    squash.deleted = sorted(item.file.deleted_replaces)
    if (record and record["runs"]) or item.file.status == "modified":
        item.squash = squash
        return item
    return Analysed(item.file, [], sql_known=True, squash=squash)


def from_record(record: SquashRecord) -> Squash:
    return Squash(replaces=[f"{app}.{name}" for app, name in record["replaces"]],
                  differences=list(record["differences"]), uncompared=record["uncompared"],
                  dropped=list(record["dropped"]))


def notes(answer: ReviewAnswer | None) -> list[str]:
    """What Django does with each new squash, and with the new migrations one replaces."""
    out = []
    for record in (answer or {}).get("squashes", []):
        label = f"{record['app_label']}.{record['name']}"
        replaced = [f"{app}.{name}" for app, name in record["replaces"]]
        in_base = [f"{app}.{name}" for app, name in record["in_base"]]
        if record["applied"]:
            out.append(f"squash: {label} replaces {listed(replaced)}, all in the base: where they are "
                       "applied Django records it as applied and runs nothing (a new database runs it "
                       "instead of them); reviewed without its operations")
        elif not record["runs"]:
            rest = [name for name in replaced if name not in in_base]
            out.append(f"squash: {label} replaces {listed(replaced)}, of which only {listed(in_base)} "
                       f"are in the base: there Django cannot use it and runs {listed(rest)} instead, "
                       "each reviewed on its own")
        else:
            out.append(f"squash: {label} replaces {listed(replaced)}, none of them in the base: it "
                       "runs in their place and is reviewed like any new migration")
    out += [f"squash: {r['app_label']}.{r['name']} is replaced by {r['replaced_by']}: Django runs the "
            "squash instead of it" for r in (answer or {}).get("replaced", [])]
    return out


def listed(names: list[str]) -> str:
    """Names for a note: a long run of migrations by its first and last."""
    return ", ".join(names) if len(names) <= 4 else f"{names[0]} … {names[-1]} ({len(names)} migrations)"
