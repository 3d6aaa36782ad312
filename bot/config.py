"""`.github/migration-safe.yml` -> Config, validated, with errors that name the key."""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_PATH = ".github/migration-safe.yml"
RULE_ID = re.compile(r"^MS\d{3}$")
LEVELS = ("error", "warning", "notice", "off")


class ConfigError(ValueError):
    """The configuration file is unreadable or has a bad key or value."""


@dataclass
class Config:
    python: str | None = None
    django_settings: str | None = None
    django_root: str = "."
    postgres_version: int | None = None
    lock_timeout_managed: bool = False
    large_tables: set[str] = field(default_factory=set)
    table_rows: dict[str, int] = field(default_factory=dict)
    small_rows: int = 10_000
    disabled_rules: set[str] = field(default_factory=set)
    severity: dict[str, str] = field(default_factory=dict)
    ignore_paths: list[str] = field(default_factory=list)
    install: list[str] = field(default_factory=list)
    autofix: str = "off"
    source: str | None = None  # the file it came from

    def is_large(self, table: str) -> bool:
        """Long-running work on it must be deferred (listed, or known to be big)."""
        return table in self.large_tables or self.table_rows.get(table, 0) >= 100 * self.small_rows

    def is_small(self, table: str) -> bool:
        """Known from production stats to be small enough that a short lock does little harm."""
        rows = self.table_rows.get(table)
        return rows is not None and rows < self.small_rows and table not in self.large_tables

    def ignores(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.ignore_paths)


def load_config(repo: Path, path: str | None = None) -> Config:
    """Read the config of the project at `repo`; a missing file gives the defaults."""
    file = Path(path) if path else repo / CONFIG_PATH
    if not file.exists():
        if path:
            raise ConfigError(f"{path}: no such file")
        return Config()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{display(file, repo)}: not valid YAML: {exc}") from exc
    return parse_config(data, file, repo)


def parse_config(data: Any, file: Path, repo: Path) -> Config:
    where = display(file, repo)
    if data is None:
        return Config(source=where)
    reader = _Reader(where)
    top = reader.mapping(data, "", {"python", "django", "postgres", "tables", "rules", "paths",
                                    "install", "autofix"})
    django = reader.mapping(top.get("django"), "django", {"settings", "root"})
    postgres = reader.mapping(top.get("postgres"), "postgres", {"version", "lock_timeout"})
    tables = reader.mapping(top.get("tables"), "tables", {"large", "stats", "small_rows"})
    rules = reader.mapping(top.get("rules"), "rules", {"disable", "severity"})
    paths = reader.mapping(top.get("paths"), "paths", {"ignore"})
    config = Config(
        python=reader.string(top.get("python"), "python"),
        django_settings=reader.string(django.get("settings"), "django.settings"),
        django_root=reader.string(django.get("root"), "django.root") or ".",
        postgres_version=reader.integer(postgres.get("version"), "postgres.version", 10, 99),
        lock_timeout_managed=reader.choice(postgres.get("lock_timeout"), "postgres.lock_timeout",
                                           ("managed", "unmanaged"), "unmanaged") == "managed",
        large_tables=set(reader.strings(tables.get("large"), "tables.large")),
        small_rows=reader.integer(tables.get("small_rows"), "tables.small_rows", 0, None) or 10_000,
        disabled_rules=set(reader.rule_ids(rules.get("disable"), "rules.disable")),
        severity=reader.severities(rules.get("severity")),
        ignore_paths=reader.strings(paths.get("ignore"), "paths.ignore"),
        install=reader.commands(top.get("install"), "install"),
        autofix=reader.choice(top.get("autofix"), "autofix", ("off", "suggest", "push"), "off"),
        source=where,
    )
    stats = reader.string(tables.get("stats"), "tables.stats")
    if stats:
        config.table_rows = load_stats(repo / stats, f"{where}: tables.stats")
    return config


def load_stats(file: Path, where: str) -> dict[str, int]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {file.name} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: {file.name} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in data.items()):
        raise ConfigError(f"{where}: {file.name} must map table names to row counts (whole numbers)")
    return data


class _Reader:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where}: {key or 'the file'}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping")
        for name in value:
            if name not in allowed:
                full = f"{key}.{name}" if key else str(name)
                raise self.fail(full, "unknown key (allowed: " + ", ".join(sorted(allowed)) + ")")
        return value

    def string(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty string")
        return value.strip()

    def strings(self, value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of strings")
        return list(value)

    def commands(self, value: Any, key: str) -> list[str]:
        return [value] if isinstance(value, str) else self.strings(value, key)

    def integer(self, value: Any, key: str, low: int, high: int | None) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            span = f"from {low} to {high}" if high else f"of at least {low}"
            raise self.fail(key, f"must be a whole number {span}, not {value!r}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def rule_ids(self, value: Any, key: str) -> list[str]:
        ids = self.strings(value, key)
        for rule in ids:
            if not RULE_ID.match(rule):
                raise self.fail(key, f"{rule!r} is not a rule id (MSnnn)")
        return ids

    def severities(self, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail("rules.severity", "must map rule ids to error, warning, notice or off")
        for rule, level in value.items():
            if not isinstance(rule, str) or not RULE_ID.match(rule):
                raise self.fail("rules.severity", f"{rule!r} is not a rule id (MSnnn)")
            if level not in LEVELS:
                raise self.fail(f"rules.severity.{rule}", f"must be one of {', '.join(LEVELS)}, not {level!r}")
        return dict(value)


def display(file: Path, repo: Path) -> str:
    try:
        return str(file.resolve().relative_to(repo.resolve()))
    except ValueError:
        return str(file)
