"""What a published body looks like once GitHub renders it: cmark-gfm, GitHub's own renderer.

Raw HTML is let through (GitHub keeps <img>, <details>, comments…), so that any a body
lets in shows up here as a tag or a comment.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

MARKDOWN_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "code", "pre", "em", "strong",
                 "a", "table", "thead", "tbody", "tr", "th", "td", "blockquote", "br", "hr", "del"}
OUR_COMMENT = re.compile(r"^ migration-safe:(summary|finding \S+|pushed [0-9a-f]{40}) $")
MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9][\w-]*(/[\w-]+)?")
REFERENCE = re.compile(r"(?<![\w&])#\d")


@dataclass
class Rendered:
    html: str
    tags: set[str] = field(default_factory=set)
    comments: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    headings: list[tuple[str, str]] = field(default_factory=list)  # (tag, text)
    text: list[str] = field(default_factory=list)  # outside code
    code: list[str] = field(default_factory=list)  # each code span or block

    def problems(self, own_links: tuple[str, ...] = (), mentions: tuple[str, ...] = ()) -> list[str]:
        """What PR text made of the body: raw HTML, mentions, references or links outside code.
        `mentions`: the App's own (a reply mentions the commenter)."""
        found = [f"raw HTML <{tag}>" for tag in sorted(self.tags - MARKDOWN_TAGS)]
        found += [f"HTML comment {c!r}" for c in self.comments if not OUR_COMMENT.match(c)]
        prose = "".join(self.text)
        found += [f"mention {m.group()!r} in {prose[max(0, m.start() - 30):m.end() + 30]!r}"
                  for m in MENTION.finditer(prose) if m.group() not in mentions]
        found += [f"reference {m.group()!r}" for m in REFERENCE.finditer(prose)]
        found += [f"link {href!r}" for href in self.links if not href.startswith(own_links or ("\0",))]
        return found


class _Reader(HTMLParser):
    def __init__(self, out: Rendered) -> None:
        super().__init__(convert_charrefs=True)
        self.out, self.stack, self.buffer = out, [], []

    def handle_starttag(self, tag, attrs):
        self.out.tags.add(tag)
        if tag == "a":
            self.out.links.append(dict(attrs).get("href") or "")
        if tag in ("code", "h1", "h2", "h3", "h4", "h5", "h6"):
            self.buffer.append([])
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass
        if tag == "code" and self.buffer:
            self.out.code.append("".join(self.buffer.pop()))
        elif tag.startswith("h") and tag[1:].isdigit() and self.buffer:
            self.out.headings.append((tag, "".join(self.buffer.pop()).strip()))

    def handle_data(self, data):
        for part in self.buffer:
            part.append(data)
        if "code" not in self.stack:
            self.out.text.append(data)

    def handle_comment(self, data):
        self.out.comments.append(data)


def render(body: str) -> Rendered:
    html = cmarkgfm.github_flavored_markdown_to_html(body, options=Options.CMARK_OPT_UNSAFE)
    out = Rendered(html)
    reader = _Reader(out)
    reader.feed(html)
    reader.close()
    return out
