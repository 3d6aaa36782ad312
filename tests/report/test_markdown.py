from __future__ import annotations

import pytest

from migration_safe.engine.model import Review
from migration_safe.report import markdown

DOCS = "https://example.test/docs"


def test_heading_states_the_verdict(review: Review, clean_review: Review) -> None:
    assert markdown.summary(review).startswith("## ❌ migration-safe: 2 of 4 migration(s) must change")
    assert markdown.summary(clean_review).startswith("## ✅ migration-safe: 1 migration(s), nothing blocks")


def test_phase_table(review: Review) -> None:
    out = markdown.summary(review)
    assert "| migration | phase | blocking | findings |" in out
    assert "| `shop.0007_add_sku` | pre-deploy | **yes** | 1 error, 0 warnings, 0 notices |" in out
    assert "| `shop.0008_remove_legacy` | post-deploy | no | 0 errors, 0 warnings, 1 notice |" in out
    assert "| `shop.0009_mixed` | **needs split** | **yes** |" in out


def test_blocking_reasons_link_rules(review: Review, rules: dict) -> None:
    out = markdown.summary(review, rules=rules, docs_url=DOCS)
    blocking = out.split("### Blocking")[1].split("###")[0]
    assert f"[MS102]({DOCS}/rules/MS102/) NOT NULL field without a database default" in blocking
    assert "`shop/migrations/0007_add_sku.py:14`" in blocking
    assert "`shop.0009_mixed` mixes deploy phases" in blocking
    assert "MS205" not in blocking  # acknowledged: no longer blocking


def test_default_docs_url(review: Review, monkeypatch) -> None:
    """The README's rule table until a team publishes the docs site; then each rule's own page."""
    monkeypatch.delenv("MIGRATION_SAFE_DOCS_URL", raising=False)
    table = "(https://github.com/migration-safe/migration-safe/blob/main/README.md#rule-catalogue)"
    assert table in markdown.summary(review)
    monkeypatch.setenv("MIGRATION_SAFE_DOCS_URL", "https://docs.example.com/migration-safe/")
    assert "(https://docs.example.com/migration-safe/rules/MS102/)" in markdown.summary(review)


def test_acknowledged_and_sql_unavailable(review: Review) -> None:
    out = markdown.summary(review)
    acknowledged = out.split("### Acknowledged")[1]
    assert "MS205" in acknowledged and "acknowledged by alice: table has 12 rows" in acknowledged
    assert "SQL was unavailable for `billing.0003_backfill`" in out
    assert "did not verify the SQL" in out


def test_sql_text_blocks(review: Review) -> None:
    out = markdown.sql_text(review)
    assert out.count("```sql") == 3 and out.count("```") == 6
    assert 'ALTER TABLE "shop_product" ADD COLUMN' in out
    assert "_SQL unavailable_: `ImportError" in out


@pytest.mark.parametrize("cut", [1.0, 0.9, 0.5, 0.3, 0.1, 0.0])
def test_sql_text_truncated_within_limit(review: Review, cut: float) -> None:
    full = len(markdown.sql_text(review))
    limit = int(full * cut)
    out = markdown.sql_text(review, limit=limit)
    assert len(out.encode()) <= limit
    assert ("truncated" in out) == (cut < 1 and limit > 20)  # below that not even a short note fits
    assert out.count("```") % 2 == 0  # never leaves a code block open


def test_sql_text_huge_review_fits_github_limit(review: Review) -> None:
    big = Review(review.migrations * 400)
    assert len(markdown.sql_text(big, limit=10**7)) > 65535
    out = markdown.sql_text(big)
    assert len(out.encode()) <= 65535 and "truncated" in out and out.count("```") % 2 == 0


def test_render_whole_comment_within_limit(review: Review) -> None:
    limit = len(markdown.summary(review)) + 300
    out = markdown.render(review, limit=limit)
    assert len(out.encode()) <= limit and out.startswith("## ❌") and "```sql" in out and "truncated" in out
