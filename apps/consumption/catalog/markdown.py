"""Product descriptions: Markdown rendered to HTML that cannot run anything.

CommonMark with raw HTML disabled (a `<script>` tag is shown as text, escaped), and links and
images only to http, https and mailto addresses: anything else (`javascript:`, `data:`,
`vbscript:`, relative paths) stays plain text. Links get `rel="nofollow noopener noreferrer"`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})


class _SafeMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        # `url` is already normalized (entities decoded, percent-encoded), so `java&#115;cript:` is caught too.
        try:
            scheme = urlsplit(url.strip()).scheme.lower()
        except ValueError:
            return False
        return scheme in ALLOWED_SCHEMES


def _link_open(self: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return self.renderToken(tokens, idx, options, env)


_renderer = _SafeMarkdown("commonmark", {"html": False})
_renderer.add_render_rule("link_open", _link_open)


def render_markdown(text: str) -> str:
    """Safe HTML of a Markdown text."""
    return _renderer.render(text or "")
