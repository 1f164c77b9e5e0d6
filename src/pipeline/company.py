"""The built-in `company` pipeline: resolve -> crawl -> extract -> score.

Results between phases (all JSON-serialisable): resolve leaves `site_url`, `final_url` and the
scratch key `_homepage_html`; crawl leaves `crawled`, `crawl_skipped` and scratch `_pages`;
extract replaces the scratch keys (it removes them from `ctx.results`) with `name`,
`description`, `emails`, `phones`, `socials`, `address`; score adds `score` and the display
strings the output columns read. Keys starting with `_` are scratch: large, short-lived, not
worth persisting.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from pipeline.context import JobContext
from pipeline.errors import FetchError, TransientError
from pipeline.extract import PageInfo, extract_page, merge_pages
from pipeline.fetcher import Fetcher
from pipeline.phase import Phase, Pipeline
from pipeline.urls import InvalidURL, normalize_url, same_site

logger = logging.getLogger(__name__)

__all__ = ["candidate_pages", "company_pipeline", "completeness"]

FetcherFactory = Callable[[], Fetcher]

# Path or link-text words that mark a page likely to describe the company, and their weight.
_KEYWORDS = {
    "about": 10,
    "about-us": 10,
    "aboutus": 10,
    "ueber-uns": 10,
    "uber-uns": 10,
    "who-we-are": 9,
    "contact": 9,
    "contact-us": 9,
    "kontakt": 9,
    "impressum": 8,
    "imprint": 8,
    "company": 7,
    "team": 6,
    "people": 5,
    "locations": 4,
    "offices": 4,
    "legal": 3,
}
_SKIP_SUFFIXES = re.compile(
    r"\.(?:pdf|jpe?g|png|gif|svg|webp|zip|gz|docx?|xlsx?|pptx?|mp[34]|css|js|xml|txt|json)$",
    re.IGNORECASE,
)
_WEIGHTS = {
    "name": 15,
    "description": 10,
    "emails": 25,
    "phones": 15,
    "address": 15,
    "linkedin": 10,
    "other_socials": 10,
}


def company_pipeline(
    fetcher_factory: FetcherFactory = Fetcher,
    *,
    max_pages: int = 3,
    page_timeout: float = 10.0,
) -> Pipeline:
    """Build the company-website enrichment pipeline.

    Phases use the shared `Fetcher` in `ctx.services["fetcher"]`; without one they build a
    fetcher with `fetcher_factory` for the duration of the phase. `max_pages` bounds the extra
    same-site pages crawled; `page_timeout` bounds each fetch (and never exceeds what is left
    of the phase's deadline).
    """

    @contextmanager
    def fetcher_for(ctx: JobContext) -> Iterator[Fetcher]:
        shared = ctx.services.get("fetcher")
        if isinstance(shared, Fetcher):
            yield shared
            return
        with fetcher_factory() as own:
            yield own

    def resolve(ctx: JobContext) -> Mapping[str, Any]:
        cell = (ctx.inputs.get("Website") or "").strip()
        if not cell:
            raise InvalidURL("no website")
        with fetcher_for(ctx) as fetcher:
            # A single-label name (http://intranet:8080/) is a website only if allow-listed.
            url = normalize_url(cell, local_name=fetcher.policy.allows_name)
            ctx.report(0.1, f"fetching {url}")
            page = fetcher.get(url, timeout=ctx.remaining(page_timeout))
        ctx.log.info("resolved %s to %s", url, page.url)
        ctx.report(1.0, "homepage fetched")
        return {"site_url": url, "final_url": page.url, "_homepage_html": page.text}

    def crawl(ctx: JobContext) -> Mapping[str, Any]:
        home = str(ctx.results["final_url"])
        links = candidate_pages(str(ctx.results.get("_homepage_html", "")), home, max_pages)
        pages: list[dict[str, str]] = []
        skipped: list[str] = []
        if not links:
            ctx.report(1.0, "no about/contact pages linked")
        with fetcher_for(ctx) as fetcher:
            for done, link in enumerate(links, start=1):
                ctx.check()
                label = urlsplit(link).path or "/"
                try:
                    if not fetcher.can_fetch(link, timeout=ctx.remaining(page_timeout)):
                        skipped.append(f"{label}: disallowed by robots.txt")
                    else:
                        page = fetcher.get(link, timeout=ctx.remaining(page_timeout))
                        if same_site(page.url, home):
                            pages.append({"url": page.url, "html": page.text})
                        else:
                            skipped.append(f"{label}: redirected off-site")
                except FetchError as exc:
                    # One missing about page must not fail the row: note it and go on.
                    skipped.append(f"{label}: {exc.reason}")
                ctx.report(done / len(links), f"page {done}/{len(links)}: {label}")
        if skipped:
            ctx.log.info("crawl skipped %s", "; ".join(skipped))
        return {"_pages": pages, "crawled": [p["url"] for p in pages], "crawl_skipped": skipped}

    def extract(ctx: JobContext) -> Mapping[str, Any]:
        sources = [(str(ctx.results["final_url"]), str(ctx.results.get("_homepage_html", "")))]
        sources += [(p["url"], p["html"]) for p in ctx.results.get("_pages", [])]
        infos: list[PageInfo] = []
        for done, (url, html) in enumerate(sources, start=1):
            infos.append(extract_page(html, url))
            ctx.report(done / len(sources), f"read {done}/{len(sources)} pages")
        info = merge_pages(infos)
        # The raw HTML has served its purpose; keep results small from here on.
        ctx.results.pop("_homepage_html", None)
        ctx.results.pop("_pages", None)
        return {
            "name": info.name,
            "description": info.description,
            "emails": info.emails,
            "phones": info.phones,
            "socials": info.socials,
            "address": info.address,
        }

    def score(ctx: JobContext) -> Mapping[str, Any]:
        results = ctx.results
        socials: dict[str, str] = dict(results.get("socials") or {})
        ctx.report(1.0, "scored")
        return {
            "score": completeness(results),
            "name": results.get("name") or "",
            "description": results.get("description") or "",
            "address": results.get("address") or "",
            "emails_text": ", ".join(results.get("emails") or []),
            "phones_text": ", ".join(results.get("phones") or []),
            "linkedin": socials.get("linkedin", ""),
            "socials_text": ", ".join(v for k, v in socials.items() if k != "linkedin"),
        }

    return Pipeline(
        name="company",
        phases=[
            Phase(
                "resolve",
                resolve,
                timeout=page_timeout * 2 + 5,
                retries=2,
                transient=(TransientError,),
                outputs={"Final URL": "final_url"},
            ),
            Phase(
                "crawl",
                crawl,
                timeout=page_timeout * (max_pages + 1) * 2 + 5,
                retries=1,
            ),
            Phase("extract", extract, timeout=60.0, retries=0, transient=()),
            Phase(
                "score",
                score,
                timeout=10.0,
                retries=0,
                transient=(),
                outputs={
                    "Name": "name",
                    "Description": "description",
                    "Emails": "emails_text",
                    "Phones": "phones_text",
                    "LinkedIn": "linkedin",
                    "Socials": "socials_text",
                    "Address": "address",
                    "Score": "score",
                },
            ),
        ],
        inputs=("Company", "Website"),
        required=("Website",),
    )


def completeness(results: Mapping[str, Any]) -> int:
    """How complete the extracted record is, 0-100 (weights in `_WEIGHTS`)."""
    socials = results.get("socials") or {}
    present = {
        "name": bool(results.get("name")),
        "description": bool(results.get("description")),
        "emails": bool(results.get("emails")),
        "phones": bool(results.get("phones")),
        "address": bool(results.get("address")),
        "linkedin": "linkedin" in socials,
        "other_socials": any(network != "linkedin" for network in socials),
    }
    return sum(weight for key, weight in _WEIGHTS.items() if present[key])


def candidate_pages(html: str, base_url: str, limit: int = 3) -> list[str]:
    """Up to `limit` same-site pages linked from `html` that likely describe the company.

    Ranked by path and link-text keywords (about, contact, imprint, team...), shallow paths
    first; one page per keyword before a second page for any keyword.
    """
    if limit <= 0 or not html:
        return []
    tree = LexborHTMLParser(html)
    base_tag = tree.css_first("base[href]")
    base = urljoin(base_url, base_tag.attributes.get("href") or "") if base_tag else base_url
    home = _without_fragment(base_url)
    ranked: list[tuple[int, int, int, str, str]] = []
    seen = {home, home.rstrip("/")}
    for order, link in enumerate(tree.css("a[href]")):
        href = (link.attributes.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "tel:", "javascript:")):
            continue
        url = _without_fragment(urljoin(base, href))
        parts = urlsplit(url)
        if url in seen or parts.scheme not in ("http", "https"):
            continue
        if _SKIP_SUFFIXES.search(parts.path) or not same_site(url, base_url):
            continue
        seen.add(url)
        keyword, weight = _best_keyword(parts.path, link.text(separator=" "))
        if weight:
            depth = len([s for s in parts.path.split("/") if s])
            ranked.append((-weight, depth, order, keyword, url))
    ranked.sort()
    chosen: list[str] = []
    used: set[str] = set()
    for _, _, _, keyword, url in ranked:  # first pass: one page per keyword
        if keyword not in used and len(chosen) < limit:
            chosen.append(url)
            used.add(keyword)
    for *_, url in ranked:
        if url not in chosen and len(chosen) < limit:
            chosen.append(url)
    return chosen


def _best_keyword(path: str, text: str) -> tuple[str, int]:
    tokens = [s.lower() for s in re.split(r"[/.]", path) if s]
    tokens += [t for s in list(tokens) for t in re.split(r"[-_]", s)]
    words = re.sub(r"[^\w\s-]", " ", text.lower()).split()
    tokens += [*words, "-".join(words)]
    best = max(((t, _KEYWORDS.get(t, 0)) for t in tokens), key=lambda kv: kv[1], default=("", 0))
    group = {"about-us": "about", "aboutus": "about", "contact-us": "contact", "kontakt": "contact"}
    return group.get(best[0], best[0]), best[1]


def _without_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
