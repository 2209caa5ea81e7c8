"""Show notes as HTML that a page may include: one rule for the API and the web player."""

from __future__ import annotations

import nh3

# What show notes may keep: text formatting and links (rel=noopener noreferrer), nothing active: no
# scripts, styles, images (they would load from third parties), event handlers or frames.
DESCRIPTION_TAGS = {"a", "b", "strong", "i", "em", "u", "p", "br", "ul", "ol", "li", "blockquote", "code", "pre"}


def description_html(text: str) -> str:
    return nh3.clean(text, tags=DESCRIPTION_TAGS, attributes={"a": {"href", "title"}}, link_rel="noopener noreferrer")
