from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from migration_safe.config import ConfigError, load_config


def write(tmp_path, text):
    (tmp_path / ".github").mkdir(exist_ok=True)
    (tmp_path / ".github" / "migration-safe.yml").write_text(text)


def test_missing_file_gives_defaults(tmp_path):
    config = load_config(tmp_path)
    assert config.source is None and config.small_rows == 10_000 and not config.lock_timeout_managed


def test_full_config_is_read(tmp_path):
    (tmp_path / "stats.json").write_text(json.dumps({"shop_order": 5_000_000, "shop_tag": 12}))
    write(tmp_path, """
python: .venv/bin/python
django: {settings: mysite.settings, root: src}
postgres: {version: 16, lock_timeout: managed}
tables: {large: [shop_product], stats: stats.json}
rules: {disable: [MS115], severity: {MS116: error}}
paths: {ignore: ["legacy/*"]}
""")
    config = load_config(tmp_path)
    assert config.django_settings == "mysite.settings" and config.django_root == "src"
    assert config.postgres_version == 16 and config.lock_timeout_managed
    assert config.is_large("shop_product") and config.is_large("shop_order")
    assert config.is_small("shop_tag") and not config.is_small("shop_order") and not config.is_small("x")
    assert config.disabled_rules == {"MS115"} and config.severity == {"MS116": "error"}
    assert config.ignores("legacy/migrations/0001_x.py") and not config.ignores("shop/migrations/0001.py")


@pytest.mark.parametrize("text, key", [
    ("django: {settings: x, rooot: y}", "django.rooot"),
    ("unknown: 1", "unknown"),
    ("postgres: {version: nine}", "postgres.version"),
    ("tables: {large: shop_product}", "tables.large"),
    ("rules: {severity: {MS101: fatal}}", "rules.severity.MS101"),
    ("rules: {disable: [E501]}", "rules.disable"),
    ("postgres: {lock_timeout: sometimes}", "postgres.lock_timeout"),
    ("tables: {stats: missing.json}", "tables.stats"),
])
def test_bad_values_name_the_key(tmp_path, text, key):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path)
    assert key in str(error.value) and ".github/migration-safe.yml" in str(error.value)


def test_broken_yaml_is_a_clear_error(tmp_path):
    write(tmp_path, "django: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path)


def test_a_config_nested_past_the_parser_is_an_error_not_a_crash(tmp_path):
    """The file is the pull request's: nesting that exhausts PyYAML's recursion is its error."""
    write(tmp_path, "rules:\n  disable: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(tmp_path)


@pytest.mark.parametrize("written", ["off", "Off", "no", "false", '"off"'])
def test_off_unquoted_is_off(tmp_path, written):
    """`autofix: off` as the docs write it: YAML 1.1 reads it as a boolean, the author meant "off"."""
    write(tmp_path, f"autofix: {written}\nrules: {{severity: {{MS111: {written}}}}}\n")
    config = load_config(tmp_path)
    assert config.autofix == "off" and config.severity == {"MS111": "off"}


def test_on_is_not_a_choice(tmp_path):
    write(tmp_path, "autofix: on\n")
    with pytest.raises(ConfigError, match="autofix: must be one of off, suggest, push, not True"):
        load_config(tmp_path)


def test_the_documented_example_is_read_as_written(tmp_path):
    """docs/configuration.md's example, copied into a project as it stands."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    example = re.search(r"```yaml\n(python:.*?)```", docs, re.S).group(1)
    write(tmp_path, example)
    (tmp_path / ".github" / "table-stats.json").write_text(json.dumps({"shop_order": {"rows": 5, "bytes": 8192}}))
    config = load_config(tmp_path)
    assert config.autofix == "off" and config.severity == {"MS111": "warning"}
    assert config.is_large("shop_order") and config.install == ["pip install -r requirements.txt"]
