"""Company facts from HTML: pure functions over (html, url), no I/O.

Sources, strongest first: JSON-LD (Organization and its kin, `@graph`, lists), microdata,
OpenGraph and meta tags, `mailto:`/`tel:` links, `<address>`, and the visible text (emails,
including the common `name [at] site [dot] com` obfuscations). Emails and phones are judged
in `contacts`, social profiles in `socials`.
"""

from __future__ import annotations

import html as htmllib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urljoin

from selectolax.lexbor import LexborHTMLParser

from pipeline.contacts import EMAIL, dedupe_phones, find_emails, valid_email
from pipeline.socials import add_social, best_profile, social_profile
from pipeline.urls import host_of, registrable_domain

logger = logging.getLogger(__name__)

__all__ = [
    "CompanyInfo",
    "PageInfo",
    "extract_page",
    "find_emails",
    "format_address",
    "merge_pages",
    "social_profile",
]

MAX_EMAILS = 5
MAX_PHONES = 3
MAX_DESCRIPTION = 300

_ORG_WORDS = ("organization", "corporation", "business", "company", "store", "ngo")
_ORG_TYPES = frozenset(
    {"restaurant", "professionalservice", "dentist", "attorney", "hotel", "bank", "airline"}
)


@dataclass
class PageInfo:
    """What one page says about the company. `name` comes from strong sources only."""

    url: str
    name: str | None = None
    title_name: str | None = None
    description: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    socials: dict[str, list[str]] = field(default_factory=dict)
    address: str | None = None
    address_rank: int = 0
    domains: list[str] = field(default_factory=list)


@dataclass
class CompanyInfo:
    """Facts merged over a site's pages, ready for the sheet."""

    name: str | None = None
    description: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    socials: dict[str, str] = field(default_factory=dict)
    address: str | None = None
    sources: list[str] = field(default_factory=list)


def extract_page(html: str, url: str) -> PageInfo:
    """Extract company facts from one HTML page fetched from `url`."""
    tree = LexborHTMLParser(html)
    info = PageInfo(url=url, domains=[registrable_domain(host_of(url))])
    nodes = list(_json_ld_nodes(tree))
    org = _pick_org(nodes)
    meta = _meta(tree)

    info.name = _clean(
        (_str(org.get("name")) if org else None)
        or meta.get("og:site_name")
        or meta.get("application-name")
        or _website_name(nodes)
    )
    title = tree.css_first("title")
    info.title_name = _name_from_title(title.text() if title else "")
    description = (
        (_str(org.get("description")) if org else None)
        or meta.get("og:description")
        or meta.get("description")
        or meta.get("twitter:description")
    )
    info.description = _shorten(_clean(description), MAX_DESCRIPTION)

    for candidate in (org.get("url") if org else None, meta.get("og:url"), _canonical(tree)):
        if isinstance(candidate, str) and host_of(urljoin(url, candidate)):
            info.domains.append(registrable_domain(host_of(urljoin(url, candidate))))

    emails: list[str] = []
    phones: list[str] = []
    if org:
        for point in [org, *_dicts(org.get("contactPoint"))]:
            emails += [e.removeprefix("mailto:") for e in _strs(point.get("email"))]
            phones += _strs(point.get("telephone"))
    for link in tree.css("a[href]"):
        href = (link.attributes.get("href") or "").strip()
        scheme = href[:7].lower()
        if scheme == "mailto:":
            emails += [unquote(part) for part in href[7:].split("?", 1)[0].split(",")]
        elif href[:4].lower() == "tel:":
            number = unquote(href[4:]).split(";", 1)[0]
            shown = link.text(separator=" ").strip()
            # Show the number as the page writes it when the link text is that number.
            matches = re.sub(r"\D", "", shown) == re.sub(r"\D", "", number)
            phones.append(shown if matches and shown else number)
        else:
            add_social(info.socials, urljoin(url, href))
    for node in tree.css('[itemprop="email"], [itemprop="telephone"]'):
        value = node.attributes.get("content") or node.text()
        target = emails if node.attributes.get("itemprop") == "email" else phones
        target.append((value or "").removeprefix("mailto:").removeprefix("tel:"))
    if org:
        for same in _strs(org.get("sameAs")):
            add_social(info.socials, same, front=True)

    emails += find_emails(_visible_text(tree))
    info.emails = _dedupe([e for e in (valid_email(x) for x in emails) if e])
    info.phones = dedupe_phones(phones)
    info.address, info.address_rank = _address(org, nodes, tree)
    return info


def merge_pages(pages: Sequence[PageInfo]) -> CompanyInfo:
    """Merge per-page facts (homepage first) into one record.

    Strong names beat the homepage title; emails on the site's own domain(s) win over others
    (when the site has any, only those are kept); structured addresses beat `<address>` text.
    """
    merged = CompanyInfo(sources=[page.url for page in pages])
    merged.name = next((p.name for p in pages if p.name), None) or next(
        (p.title_name for p in pages[:1] if p.title_name), None
    )
    merged.description = next((p.description for p in pages if p.description), None)
    domains = {d for page in pages for d in page.domains if d}
    emails = _dedupe([e for page in pages for e in page.emails])
    own = [e for e in emails if registrable_domain(e.rsplit("@", 1)[1]) in domains]
    merged.emails = (own or emails)[:MAX_EMAILS]
    merged.phones = dedupe_phones([ph for page in pages for ph in page.phones])[:MAX_PHONES]
    candidates: dict[str, list[str]] = {}
    for page in pages:
        for network, urls in page.socials.items():
            candidates.setdefault(network, []).extend(urls)
    merged.socials = {net: best_profile(net, urls) for net, urls in candidates.items() if urls}
    best = max(pages, key=lambda p: p.address_rank, default=None)
    merged.address = best.address if best and best.address_rank else None
    return merged


# --- addresses ------------------------------------------------------------------------------


def format_address(value: Any) -> str | None:
    """One line from a schema.org PostalAddress (dict), a list of them, or a plain string."""
    if isinstance(value, list):
        return next((a for a in (format_address(v) for v in value) if a), None)
    if isinstance(value, str):
        return _clean(value)
    if not isinstance(value, dict):
        return None
    country = value.get("addressCountry")
    if isinstance(country, dict):
        country = country.get("name")
    locality = " ".join(
        p for p in (_str(value.get("postalCode")), _str(value.get("addressLocality"))) if p
    )
    parts = [
        ", ".join(_strs(value.get("streetAddress"))),
        _str(value.get("postOfficeBoxNumber")),
        locality,
        _str(value.get("addressRegion")),
        _str(country),
    ]
    return _clean(", ".join(_dedupe([p for p in (_clean(x) for x in parts) if p]))) or None


def _address(
    org: dict[str, Any] | None, nodes: Sequence[dict[str, Any]], tree: LexborHTMLParser
) -> tuple[str | None, int]:
    if org and (found := format_address(org.get("address"))):
        return found, 3
    for node in nodes:
        if "postaladdress" in _types(node) and (found := format_address(node)):
            return found, 3
    for element in tree.css('[itemtype*="schema.org/PostalAddress"]'):
        props = {
            prop.attributes.get("itemprop") or "": _clean(prop.text(separator=" ")) or ""
            for prop in element.css("[itemprop]")
        }
        if found := format_address(props):
            return found, 2
    for element in tree.css("address"):
        lines = [_clean(line) for line in element.text(separator="\n").splitlines()]
        kept = [
            line
            for line in lines
            if line
            and not EMAIL.search(line)
            and not re.match(r"(?i)(phone|tel|fax|e-?mail|mobile|web)\b", line)
            and not re.fullmatch(r"[0-9+()./ -]{6,}", line)
        ]
        if kept:
            return _shorten(", ".join(kept), 200), 1
    return None, 0


# --- JSON-LD, meta and text helpers ---------------------------------------------------------


def _json_ld_nodes(tree: LexborHTMLParser) -> Iterator[dict[str, Any]]:
    for script in tree.css('script[type="application/ld+json"]'):
        raw = script.text().strip()
        raw = re.sub(r"^\s*(?:<!--|/\*\s*<!\[CDATA\[\s*\*/)|(?:-->|/\*\s*\]\]>\s*\*/)\s*$", "", raw)
        try:
            data = json.loads(raw, strict=False)
        except ValueError:
            logger.debug("skipping unparsable JSON-LD block")
            continue
        yield from _walk(data, depth=0)


def _walk(data: Any, depth: int) -> Iterator[dict[str, Any]]:
    if depth > 8:
        return
    if isinstance(data, list):
        for item in data:
            yield from _walk(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        for key, value in data.items():
            if key != "address" and isinstance(value, dict | list):
                yield from _walk(value, depth + 1)


def _types(node: dict[str, Any]) -> list[str]:
    return [t.lower().rsplit("/", 1)[-1] for t in _strs(node.get("@type"))]


def _pick_org(nodes: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    orgs = [
        n
        for n in nodes
        if any(t in _ORG_TYPES or any(w in t for w in _ORG_WORDS) for t in _types(n))
    ]
    if not orgs:
        return None
    # The richest node wins: pages often reference a stub {"@type": "Organization", "name": ..}.
    return max(orgs, key=lambda n: len(n))


def _website_name(nodes: Sequence[dict[str, Any]]) -> str | None:
    for node in nodes:
        if "website" in _types(node) and (name := _str(node.get("name"))):
            return name
    return None


def _meta(tree: LexborHTMLParser) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.css("meta[content]"):
        key = (node.attributes.get("property") or node.attributes.get("name") or "").lower()
        value = _clean(node.attributes.get("content"))
        if key and value and key not in found:
            found[key] = value
    return found


def _canonical(tree: LexborHTMLParser) -> str | None:
    link = tree.css_first('link[rel="canonical"][href]')
    return link.attributes.get("href") if link else None


def _visible_text(tree: LexborHTMLParser) -> str:
    body = tree.body
    if body is None:
        return ""
    for node in body.css("script, style, noscript, template, svg"):
        node.decompose()
    return body.text(separator=" ")


_GENERIC_TITLES = frozenset({"home", "homepage", "home page", "welcome", "startseite", "index"})


def _name_from_title(title: str) -> str | None:
    parts = [_clean(p) for p in re.split(r"\s+[|–—·:-]\s+", title)]
    parts = [p for p in parts if p and p.lower() not in _GENERIC_TITLES]
    return _shorten(parts[0], 100) if parts else None


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        return _str(value.get("name") or value.get("@value"))
    if isinstance(value, list) and value:
        return _str(value[0])
    return None


def _strs(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [s for s in (_str(item) for item in items) if s]


def _dicts(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    text = re.sub(r"\s+", " ", htmllib.unescape(value)).strip()
    return text or None


def _shorten(value: str | None, limit: int) -> str | None:
    if value is None or len(value) <= limit:
        return value
    cut = value[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))
