from __future__ import annotations

from migration_safe.engine.model import Review
from migration_safe.report import text

ANSI = "\x1b["


def test_header_operations_findings(review: Review) -> None:
    out = text.render(review)
    assert "shop.0007_add_sku  shop/migrations/0007_add_sku.py  phase: pre-deploy  BLOCKING" in out
    assert "shop.0009_mixed  shop/migrations/0009_mixed.py  NEEDS SPLIT  BLOCKING" in out
    assert "[0] AddField  lines 14-18  pre-deploy  Add field sku to product" in out
    assert "locks: shop_product AccessExclusiveLock; rewrites: shop_product" in out
    assert "shop/migrations/0007_add_sku.py:14  error  MS102  NOT NULL column" in out
    assert "    safe: Add the field with db_default" in out
    assert "shop/migrations/0008_remove_legacy.py:9  notice  MS301" in out


def test_needs_split_says_which_operations_belong_to_which_phase(review: Review) -> None:
    lines = text.render(review).splitlines()
    header = lines.index("shop.0009_mixed  shop/migrations/0009_mixed.py  NEEDS SPLIT  BLOCKING")
    assert lines[header + 1] == (
        "  needs split: its operations belong to different deploy phases (pre-deploy: [0] AddField; "
        "post-deploy: [1] DeleteModel), and one migration runs in one phase; `migration-safe fix` "
        "writes one migration per phase")
    assert "needs split:" not in text.render(review).split("shop.0009_mixed")[0]


def test_sql_shown_unless_disabled(review: Review) -> None:
    assert '      ALTER TABLE "shop_product" ADD COLUMN' in text.render(review)
    assert "ALTER TABLE" not in text.render(review, show_sql=False)


def test_acknowledged_marked_with_who_and_why(review: Review) -> None:
    assert "acknowledged by alice: table has 12 rows" in text.render(review)


def test_summary_counts_blocking_and_loud_sql_note(review: Review) -> None:
    last_lines = text.render(review).rstrip("\n").splitlines()[-2:]
    assert "1 error" not in last_lines[0]  # two errors: one open, one acknowledged
    assert "2 errors, 0 warnings, 1 notice (1 acknowledged); blocking: yes" in last_lines[0]
    assert last_lines[1].startswith("SQL UNAVAILABLE for billing.0003_backfill")
    assert "static analysis and did not verify the SQL" in last_lines[1]


def test_clean_review_not_blocking(clean_review: Review) -> None:
    out = text.render(clean_review)
    assert out.rstrip().endswith("blocking: no")
    assert "BLOCKING" not in out and "UNAVAILABLE" not in out


def test_colour_only_when_asked(review: Review) -> None:
    assert ANSI not in text.render(review, color=False)
    coloured = text.render(review, color=True)
    assert "\x1b[31merror\x1b[0m" in coloured and "\x1b[36mnotice\x1b[0m" in coloured
    assert "\x1b[1mshop.0007_add_sku\x1b[0m" in coloured


def test_multiline_message_stays_indented(review: Review) -> None:
    assert "if any,\n    must be gone" in text.render(review)
