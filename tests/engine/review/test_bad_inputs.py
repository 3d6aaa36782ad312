"""Bad input gets a clear message and the right exit status; nothing unchecked is called safe."""
from __future__ import annotations

import json

import pytest

from migration_safe.cli import main

pytestmark = pytest.mark.slow

NULLABLE = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.AddField("customer", "nickname", models.CharField(max_length=5, null=True))]
'''


def check(project, *args):
    out = project.root.parent / "out.json"
    code = main(["check", "--repo", str(project.root), "--base", project.base, "--format", "json",
                 "--output", str(out), *args])
    return code, (json.loads(out.read_text()) if out.exists() else None)


def test_syntax_error_is_a_blocking_finding_and_others_fall_back_to_static(shop):
    shop.migration("shop", "0002_nickname", NULLABLE)
    shop.migration("shop", "0003_broken", "from django.db import migrations\nclass Migration(:\n")
    shop.commit()
    code, report = check(shop)
    assert code == 1
    broken = next(m for m in report["migrations"] if m["name"] == "0003_broken")
    assert [(f["rule"], f["severity"], f["line"]) for f in broken["findings"]] == [("MS001", "error", 2)]
    # Django cannot load an app with an unparsable migration: the others are read statically
    fine = next(m for m in report["migrations"] if m["name"] == "0002_nickname")
    assert fine["sql_status"] == "unavailable" and "0003_broken.py does not parse" in fine["sql_error"]
    assert not fine["blocking"] and fine["phase"] == "pre-deploy"


def test_settings_that_raise_fall_back_to_static_review(shop, capsys):
    shop.write("mysite/settings.py", "raise RuntimeError('needs SECRET from vault')\n")
    shop.migration("shop", "0002_nickname", NULLABLE)
    shop.commit()
    code, report = check(shop)
    [migration] = report["migrations"]
    assert migration["sql_status"] == "unavailable"
    assert "needs SECRET from vault" in migration["sql_error"]
    assert migration["phase"] == "pre-deploy" and migration["operations"][0]["sql"] == []
    assert "MS002" in {f["rule"] for f in migration["findings"] if f["severity"] == "warning"}
    assert code == 0  # nothing blocking, but never a clean bill: the text and check run say unverified


def test_static_fallback_still_blocks_what_the_file_shows(shop):
    shop.write("mysite/settings.py", "import does_not_exist\n")
    shop.migration("shop", "0002_idx", '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [
                migrations.AddIndex("product", models.Index(fields=["price"], name="p_idx")),
                migrations.RenameField("product", "title", "name"),
            ]
    ''')
    shop.commit()
    code, report = check(shop)
    [migration] = report["migrations"]
    assert code == 1 and migration["sql_status"] == "unavailable"
    assert {"MS101", "MS108"} <= {f["rule"] for f in migration["findings"] if f["severity"] == "error"}


def test_circular_dependency_is_blocking(shop):
    shop.migration("shop", "0002_a", 'from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n'
                   '    dependencies = [("shop", "0003_b")]\n    operations = []\n')
    shop.migration("shop", "0003_b", 'from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n'
                   '    dependencies = [("shop", "0002_a")]\n    operations = []\n')
    shop.commit()
    code, report = check(shop)
    assert code == 1
    for migration in report["migrations"]:
        rules = {f["rule"] for f in migration["findings"]}
        assert "MS006" in rules and migration["sql_status"] == "unavailable"
        assert "Circular" in migration["sql_error"] or "circular" in migration["sql_error"]


def test_empty_diff_is_clean(shop, capsys):
    shop.write("shop/views.py", "x = 1\n")
    shop.commit()
    code, report = check(shop)
    assert code == 0 and report["migrations"] == [] and report["blocking"] is False


def test_base_that_does_not_exist_is_a_usage_error(shop, capsys):
    code = main(["check", "--repo", str(shop.root), "--base", "no-such-branch"])
    assert code == 2 and "no-such-branch" in capsys.readouterr().err


def test_broken_config_is_a_usage_error(shop, capsys):
    shop.write(".github/migration-safe.yml", "tables:\n  large: [unclosed\n")
    shop.migration("shop", "0002_nickname", NULLABLE)
    shop.commit()
    code = main(["check", "--repo", str(shop.root), "--base", shop.base])
    err = capsys.readouterr().err
    assert code == 2 and ".github/migration-safe.yml" in err and "YAML" in err


def test_not_a_repository(tmp_path, capsys):
    assert main(["check", "--repo", str(tmp_path), "--base", "main"]) == 2
    assert "not a git repository" in capsys.readouterr().err


def test_worktree_head_reviews_uncommitted_files(shop):
    shop.migration("shop", "0002_nickname", NULLABLE)  # not committed
    code, report = check(shop, "--head", "WORKTREE")
    assert code == 0 and [m["name"] for m in report["migrations"]] == ["0002_nickname"]
    assert report["migrations"][0]["sql_status"] == "ok"


def test_modified_migration_gets_its_own_finding(shop):
    initial = shop.root / "shop" / "migrations" / "0001_initial.py"
    initial.write_text(initial.read_text().replace("max_length=100", "max_length=120"))
    shop.commit()
    code, report = check(shop)
    [migration] = report["migrations"]
    assert [f["rule"] for f in migration["findings"]] == ["MS003"] and code == 0
