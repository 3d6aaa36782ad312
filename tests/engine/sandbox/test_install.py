"""`install:` builds the project's dependencies once, sandboxed, and the review runs on them."""
from __future__ import annotations

import pytest

from migration_safe.engine.sandbox import egress, install
from migration_safe.engine.review.pipeline import ReviewRequest, run_review

pytestmark = pytest.mark.slow

CONFIG = "install: pip install --quiet -r requirements.txt\n"


@pytest.fixture(autouse=True)
def pypi_listed(monkeypatch):
    """PyPI, listed by the operator: a machine whose resolver answers it with a private address (a
    mirror, as on some CI hosts) is refused it otherwise."""
    monkeypatch.setenv(egress.HOSTS_ENV, "pypi.org,files.pythonhosted.org")


def with_local_dependency(project, requirements: str):
    project.write(".github/migration-safe.yml", CONFIG)
    project.write("requirements.txt", requirements)
    project.write("vendor/shoputils/pyproject.toml", '''
        [project]
        name = "shoputils"
        version = "1.0"
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
    ''')
    project.write("vendor/shoputils/shoputils/__init__.py", "CURRENCY = 'EUR'\n")
    settings = (project.root / "mysite" / "settings.py").read_text()
    project.write("mysite/settings.py", "import shoputils  # only the project's virtualenv has it\n" + settings)
    project.migration("shop", "0002_nickname", '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.AddField("customer", "nickname", models.CharField(max_length=9, null=True))]
    ''')
    project.commit()


def test_review_runs_on_the_installed_dependencies_and_caches_them(shop):
    with_local_dependency(shop, "Django>=5.2,<6\n./vendor/shoputils\n")
    review = run_review(ReviewRequest(repo=shop.root, base=shop.base, install=True))
    [migration] = review.migrations
    assert migration.sql_status == "ok", migration.sql_error
    assert migration.operations[0].sql == ['ALTER TABLE "shop_customer" ADD COLUMN "nickname" varchar(9) NULL;']
    again = install.prepare(shop.root, [CONFIG.split(": ", 1)[1].strip()])
    assert again.cached and again.python

    without = run_review(ReviewRequest(repo=shop.root, base=shop.base))  # our interpreter lacks shoputils
    assert without.migrations[0].sql_status == "unavailable"
    assert "shoputils" in without.migrations[0].sql_error


def test_failed_install_falls_back_to_static_review_and_says_why(shop):
    with_local_dependency(shop, "this-package-does-not-exist-migration-safe==0.0.1\n")
    review = run_review(ReviewRequest(repo=shop.root, base=shop.base, install=True))
    [migration] = review.migrations
    assert migration.sql_status == "unavailable"
    assert "could not be installed" in migration.sql_error and "pip install" in migration.sql_error
