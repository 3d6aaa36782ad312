from __future__ import annotations

from migration_safe.engine.model import Review
from migration_safe.report import FORMATS


def test_cli_formats_share_one_call(review: Review, rules: dict) -> None:
    assert set(FORMATS) == {"text", "json", "github", "sarif"}
    for render in FORMATS.values():
        # The CLI passes the same options to every format; the irrelevant ones are ignored.
        out = render(review, rules=rules, color=False, show_sql=True)
        assert isinstance(out, str) and "MS102" in out
