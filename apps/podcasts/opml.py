"""OPML 2.0 subscription lists (import from and export to other podcast apps). Pure; read with defusedxml."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import defusedxml.ElementTree
from defusedxml import DefusedXmlException


class OpmlError(ValueError):
    pass


@dataclass
class Outline:
    title: str
    feed_url: str


def opml_parse(data: bytes) -> list[Outline]:
    """Every outline with an xmlUrl, nested folders included, in document order, without duplicates."""
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except (DefusedXmlException, ParseError) as exc:
        raise OpmlError(f"not an OPML document: {exc}") from None
    if root.tag.lower() != "opml":
        raise OpmlError("not an OPML document: the root element is not <opml>")
    seen: dict[str, Outline] = {}
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url and url not in seen:
            seen[url] = Outline(title=(outline.get("title") or outline.get("text") or "").strip(), feed_url=url)
    return list(seen.values())


def opml_build(*, title: str, outlines: Iterable[Outline]) -> bytes:
    opml = Element("opml", version="2.0")
    head = SubElement(opml, "head")
    SubElement(head, "title").text = title
    body = SubElement(opml, "body")
    for outline in outlines:
        SubElement(body, "outline", type="rss", text=outline.title, title=outline.title, xmlUrl=outline.feed_url)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(opml, encoding="utf-8", xml_declaration=False)
