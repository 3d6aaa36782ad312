"""Report formatters: each `render(review, *, rules=None, **opts) -> str`.

`FORMATS` maps the CLI's `--format` names to them; `markdown` (check run and PR
comment) is used by the App directly and is not a CLI format.
"""
from __future__ import annotations

from typing import Callable

from . import actions, json_report, sarif, text

Renderer = Callable[..., str]  # render(review: Review, *, rules=None, **opts) -> str

FORMATS: dict[str, Renderer] = {
    "text": text.render,
    "json": json_report.render,
    "github": actions.render,
    "sarif": sarif.render,
}

__all__ = ["FORMATS", "Renderer"]
