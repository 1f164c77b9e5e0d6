"""The built-in company pipeline, phase by phase, on the example sites served for real."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest

from pipeline.company import candidate_pages, company_pipeline, completeness
from pipeline.context import JobContext
from pipeline.errors import BlockedAddress, FetchError, JobCancelled, PhaseTimeout
from pipeline.fetcher import Fetcher
from pipeline.urls import InvalidURL
from sheetbatch.sites import SiteServer, render_example_csv
from tests.support.sites import EXAMPLE_CSV, fake_resolve, run_phases

Reports = list[tuple[str, float, str]]


def make_ctx(
    website: str,
    fetcher: Fetcher | None,
    reports: Reports | None = None,
    phase: Callable[[], str] = lambda: "",
    **kwargs: object,
) -> JobContext:
    def reporter(fraction: float, message: str) -> None:
        if reports is not None:
            reports.append((phase(), fraction, message))

    services = {"fetcher": fetcher} if fetcher is not None else {}
    return JobContext(
        job_id="job-1",
        batch_id="batch-1",
        inputs={"Company": "Test Co", "Website": website},
        reporter=reporter,
        services=services,
        **kwargs,  # type: ignore[arg-type]
    )


def outputs(results: dict[str, object]) -> dict[str, object]:
    columns = company_pipeline().output_columns
    return {column: results[key] for column, key in columns.items()}


def test_pipeline_shape() -> None:
    pipeline = company_pipeline()
    assert pipeline.name == "company"
    assert [p.name for p in pipeline.phases] == ["resolve", "crawl", "extract", "score"]
    assert tuple(pipeline.inputs) == ("Company", "Website")
    assert tuple(pipeline.required) == ("Website",)
    assert list(pipeline.output_columns) == [
        "Final URL",
        "Name",
        "Description",
        "Emails",
        "Phones",
        "LinkedIn",
        "Socials",
        "Address",
        "Score",
    ]


def test_acme_phase_by_phase(fetcher: Fetcher, site_server: SiteServer) -> None:
    pipeline = company_pipeline()
    reports: Reports = []
    current = {"phase": ""}
    ctx = make_ctx(site_server.url("acme"), fetcher, reports, lambda: current["phase"])
    resolve, crawl, extract, score = pipeline.phases

    current["phase"] = "resolve"
    ctx.results.update(resolve.run(ctx) or {})
    assert ctx.results["final_url"] == site_server.url("acme")
    assert "Acme" in ctx.results["_homepage_html"]

    current["phase"] = "crawl"
    ctx.results.update(crawl.run(ctx) or {})
    base = site_server.url("acme")
    assert ctx.results["crawled"] == [base + "about", base + "contact", base + "imprint"]
    assert ctx.results["crawl_skipped"] == []
    crawl_fractions = [f for p, f, _ in reports if p == "crawl"]
    assert crawl_fractions == pytest.approx([1 / 3, 2 / 3, 1.0])

    current["phase"] = "extract"
    ctx.results.update(extract.run(ctx) or {})
    assert not [key for key in ctx.results if key.startswith("_")]

    current["phase"] = "score"
    ctx.results.update(score.run(ctx) or {})
    assert outputs(ctx.results) == {
        "Final URL": base,
        "Name": "Acme Widgets GmbH",
        "Description": "Acme Widgets designs and manufactures industrial widgets & gadgets "
        "for factories across Europe.",
        "Emails": "info@acme-widgets.test, press@acme-widgets.test, sales@acme-widgets.test",
        "Phones": "+49 30 1234567, +49 30 7654321",
        "LinkedIn": "https://www.linkedin.com/company/acme-widgets",
        "Socials": "https://twitter.com/acmewidgets",
        "Address": "Widgetstraße 12, 10115 Berlin, DE",
        "Score": 100,
    }
    json.dumps(ctx.results)  # results stay JSON-serialisable
    assert len(json.dumps(ctx.results)) < 5000
    assert all(0.0 <= f <= 1.0 for _, f, _ in reports)


def test_robots_disallow_is_respected_in_crawl(site_server: SiteServer) -> None:
    # A dedicated server so the hit counter only sees this run.
    with (
        SiteServer(sites=[site_server.sites["dunmore"]]) as server,
        Fetcher(allow_hosts=server.allow_hosts) as fetcher,
    ):
        results = run_phases(company_pipeline(), make_ctx(server.url("dunmore"), fetcher))
        assert results["crawl_skipped"] == ["/team: disallowed by robots.txt"]
        assert server.hits("dunmore", "/team") == 0
        assert server.hits("dunmore", "/about") == 1
        assert results["emails_text"] == "workshop@dunmore-joinery.test"
        assert "sean.private" not in json.dumps(results)


def test_oversized_about_page_is_skipped_and_the_rest_used(
    fetcher: Fetcher, site_server: SiteServer
) -> None:
    results = run_phases(company_pipeline(), make_ctx(site_server.url("fjord"), fetcher))
    assert results["crawl_skipped"] == ["/about: page too large (> 2 MB)"]
    assert results["emails_text"] == "booking@fjord-shipping.test"
    assert results["address"] == "Bryggen 7, 3. etasje, 5003 Bergen, NO"


def test_homepage_redirect_is_followed(fetcher: Fetcher, site_server: SiteServer) -> None:
    results = run_phases(company_pipeline(), make_ctx(site_server.url("evergreen"), fetcher))
    assert results["final_url"] == site_server.url("evergreen") + "home"
    assert results["name"] == "Evergreen Garden Centre"
    assert results["address"] == "800 Orchard Lane, 97201 Portland, OR"


@pytest.mark.parametrize(
    ("site", "name", "emails", "score"),
    [
        ("bluefin", "Bluefin Analytics", "hello@bluefin-analytics.test", 100),
        (
            "cobalt",
            "Cobalt Labs",
            "info@cobalt-labs.test, press@cobalt-labs.test, grants@cobalt-labs.test, "
            "ada@cobalt-labs.test",
            75,
        ),
        ("granite", "Granit & Stein Werke GmbH", "kontakt@granit-stein.test", 90),
        ("harbor", "Harbor Coffee Roasters", "", 25),
    ],
)
def test_example_sites(
    fetcher: Fetcher, site_server: SiteServer, site: str, name: str, emails: str, score: int
) -> None:
    results = run_phases(company_pipeline(), make_ctx(site_server.url(site), fetcher))
    assert (results["name"], results["emails_text"], results["score"]) == (name, emails, score)


def test_crawl_notes_pages_it_could_not_use(fetcher: Fetcher, site_server: SiteServer) -> None:
    results = run_phases(company_pipeline(), make_ctx(site_server.url("harbor"), fetcher))
    assert results["crawl_skipped"] == ["/about: HTTP 404", "/contact: not HTML (application/pdf)"]


@pytest.mark.parametrize(
    ("website", "error", "expected"),
    [
        ("http://10.0.0.5/", BlockedAddress, "blocked private address 10.0.0.5"),
        ("http://intranet.test/", BlockedAddress, "blocked private address 10.0.0.5"),
        ("n/a", InvalidURL, "not a URL: 'n/a'"),
        ("", InvalidURL, "no website"),
        ("ftp://acme.test/", InvalidURL, "unsupported scheme 'ftp'"),
    ],
)
def test_resolve_fails_with_a_short_reason(
    fetcher: Fetcher, website: str, error: type[Exception], expected: str
) -> None:
    resolve = company_pipeline().phases[0]
    with pytest.raises(error) as info:
        resolve.run(make_ctx(website, fetcher))
    assert str(info.value) == expected


def test_dead_site_fails_resolve(fetcher: Fetcher, site_server: SiteServer) -> None:
    with pytest.raises(FetchError, match=r"^connection refused$"):
        company_pipeline().phases[0].run(make_ctx(site_server.dead_url, fetcher))


def test_cancelled_job_stops_crawl_before_fetching(site_server: SiteServer) -> None:
    with (
        SiteServer(sites=[site_server.sites["acme"]]) as server,
        Fetcher(allow_hosts=server.allow_hosts) as fetcher,
    ):
        cancelled = {"flag": False}
        ctx = make_ctx(server.url("acme"), fetcher, cancelled=lambda: cancelled["flag"])
        resolve, crawl, *_ = company_pipeline().phases
        ctx.results.update(resolve.run(ctx) or {})
        cancelled["flag"] = True
        with pytest.raises(JobCancelled):
            crawl.run(ctx)
        assert server.hits("acme") == 1  # the homepage only


def test_crawl_respects_the_phase_deadline(fetcher: Fetcher, site_server: SiteServer) -> None:
    now = {"t": 100.0}
    ctx = make_ctx(site_server.url("acme"), fetcher, deadline=150.0, clock=lambda: now["t"])
    resolve, crawl, *_ = company_pipeline().phases
    ctx.results.update(resolve.run(ctx) or {})
    now["t"] = 151.0
    with pytest.raises(PhaseTimeout):
        crawl.run(ctx)


def test_fetch_timeout_never_exceeds_the_time_left(
    fetcher: Fetcher, site_server: SiteServer
) -> None:
    # 0.5 s left before the deadline; the page takes 60 s: the fetch gives up at the deadline.
    now = {"t": 0.0}
    ctx = make_ctx(
        site_server.url("gateway") + "slow", fetcher, deadline=0.5, clock=lambda: now["t"]
    )
    with pytest.raises(FetchError, match=r"^timed out$"):
        company_pipeline(page_timeout=60.0).phases[0].run(ctx)


def test_without_a_shared_fetcher_the_factory_is_used(site_server: SiteServer) -> None:
    def factory() -> Fetcher:
        return Fetcher(allow_hosts=site_server.allow_hosts, resolve=fake_resolve)

    results = run_phases(company_pipeline(factory), make_ctx(site_server.url("bluefin"), None))
    assert results["name"] == "Bluefin Analytics"
    with pytest.raises(BlockedAddress):  # the default factory allows nothing private
        company_pipeline().phases[0].run(make_ctx(site_server.url("bluefin"), None))


def test_candidate_pages_ranking() -> None:
    html = """<base href="/">
    <a href="/">Home</a><a href="#top">Top</a><a href="mailto:a@b.test">Mail</a>
    <a href="/blog/about-our-new-widget">Blog post</a>
    <a href="/team">Team</a><a href="/contact#form">Write to us</a>
    <a href="/about">About us</a><a href="/about/">About (again)</a>
    <a href="/about/history">History</a>
    <a href="/impressum">Impressum</a><a href="/brochure.pdf">About (PDF)</a>
    <a href="https://other.test/about">Partner</a><a href="http://127.0.0.1:2/about">x</a>
    <a href="javascript:void(0)">About</a><a href="/p?id=4">Kontakt</a>"""
    base = "http://127.0.0.1:1/"
    assert candidate_pages(html, base, 3) == [base + "about", base + "contact", base + "impressum"]
    assert candidate_pages(html, base, 0) == []
    assert candidate_pages("", base) == []
    assert base + "p?id=4" in candidate_pages(html, base, 10)


def test_completeness_weights() -> None:
    assert completeness({}) == 0
    full = {
        "name": "A",
        "description": "B",
        "emails": ["a@a.test"],
        "phones": ["+1 555 0100"],
        "address": "C",
        "socials": {"linkedin": "https://www.linkedin.com/company/a", "x": "https://x.com/a"},
    }
    assert completeness(full) == 100
    assert completeness({**full, "socials": {}}) == 80
    assert completeness({"emails": ["a@a.test"]}) == 25


def test_example_csv_renders_with_live_urls(site_server: SiteServer) -> None:
    text = render_example_csv(EXAMPLE_CSV, site_server)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["Company", "Website"]
    assert len(rows) >= 10
    assert "{" not in text
    websites = [row["Website"] for row in rows]
    assert site_server.url("acme") in websites
    assert site_server.dead_url in websites
    assert "http://10.0.0.5/" in websites
    assert "" in websites


def test_every_example_row_ends_as_expected(fetcher: Fetcher, site_server: SiteServer) -> None:
    rows = list(csv.DictReader(io.StringIO(render_example_csv(EXAMPLE_CSV, site_server))))
    failures: dict[str, str] = {}
    scores: dict[str, int] = {}
    for row in rows:
        ctx = make_ctx(row["Website"], fetcher)
        try:
            scores[row["Company"]] = run_phases(company_pipeline(), ctx)["score"]
        except FetchError as exc:
            failures[row["Company"]] = exc.reason
        except InvalidURL as exc:
            failures[row["Company"]] = exc.reason
    assert failures == {
        "Nimbus Cloud (site is down)": "connection refused",
        "Intranet Corp": "blocked private address 10.0.0.5",
        "No Website Ltd": "no website",
        "Not A Site": "not a URL: 'n/a'",
    }
    assert len(scores) == 8
    assert all(score >= 25 for score in scores.values())
