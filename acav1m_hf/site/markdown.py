"""The dataset card's markdown body as HTML for the overview page, through markdown-it-py.

The card can say anything without becoming markup: raw HTML in it is escaped (``html`` off), and a link survives
only when it is relative or its scheme is http, https or mailto (others become their plain label). Images are off:
the page's Content-Security-Policy would block a remote one anyway. Bare http(s) URLs become links (linkify, with
fuzzy links off so that ``README.md`` stays a file name). Headings move down ``demote`` levels to sit under the
page's own title, and table cells lose markdown-it's inline ``style`` (alignment), which the policy also forbids.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore

SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def _safe_href(href: str) -> bool:
    scheme = _SCHEME.match(href)
    return scheme is None or scheme.group(1).lower() in SAFE_SCHEMES


def _unlink_unsafe(state: StateCore) -> None:
    """Drop the ``link_open``/``link_close`` pair of every link with an unsafe scheme, keeping its label."""
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        kept, dropped = [], []  # dropped: for each open link, whether its pair is being removed
        for child in token.children:
            if child.type == "link_open":
                dropped.append(not _safe_href(str(child.attrGet("href") or "")))
                if dropped[-1]:
                    continue
            elif child.type == "link_close" and dropped.pop():
                continue
            kept.append(child)
        token.children = kept


def _demote_and_unstyle(state: StateCore) -> None:
    demote = state.env.get("demote", 0)
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + demote, 6)}"
        elif token.type in ("th_open", "td_open") and token.attrs:
            token.attrs.pop("style", None)


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True}).enable(["table", "linkify"]).disable("image")
    md.linkify.set({"fuzzy_link": False, "fuzzy_email": False})
    md.validateLink = lambda url: True  # every link reaches _unlink_unsafe, which keeps the label of an unsafe one
    md.core.ruler.push("unlink_unsafe", _unlink_unsafe)
    md.core.ruler.push("demote_and_unstyle", _demote_and_unstyle)
    return md


_MARKDOWN = _parser()


def render_markdown(text: str, demote: int = 1) -> str:
    """Markdown to safe HTML (CommonMark and tables; see the module docstring for what is refused)."""
    return _MARKDOWN.render(text, {"demote": demote})
