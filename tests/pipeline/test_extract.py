"""Company facts from varied markup: JSON-LD, microdata, OpenGraph, meta, links and text."""

from __future__ import annotations

import pytest

from pipeline.extract import (
    PageInfo,
    extract_page,
    find_emails,
    format_address,
    merge_pages,
    social_profile,
)

URL = "https://www.acme.test/"


def page(head: str = "", body: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def test_json_ld_graph_organization_with_postal_address() -> None:
    html = page(
        head="""<script type="application/ld+json">
        {"@context": "https://schema.org", "@graph": [
          {"@type": "WebSite", "name": "Acme site"},
          {"@type": "Organization", "name": "Acme &amp; Co", "description": "We make  things.",
           "email": "mailto:info@acme.test", "telephone": "+1 555 0100",
           "address": {"@type": "PostalAddress", "streetAddress": "1 Main St",
                       "postalCode": "12345", "addressLocality": "Springfield",
                       "addressRegion": "IL", "addressCountry": {"name": "US"}},
           "sameAs": ["https://www.linkedin.com/company/acme", "https://github.com/acme"]}
        ]}</script>"""
    )
    info = extract_page(html, URL)
    assert info.name == "Acme & Co"
    assert info.description == "We make things."
    assert info.emails == ["info@acme.test"]
    assert info.phones == ["+1 555 0100"]
    assert info.address == "1 Main St, 12345 Springfield, IL, US"
    assert info.socials == {
        "linkedin": ["https://www.linkedin.com/company/acme"],
        "github": ["https://github.com/acme"],
    }


def test_json_ld_list_local_business_with_contact_point() -> None:
    html = page(
        head="""<script type="application/ld+json">[
          {"@type": "BreadcrumbList"},
          {"@type": ["LocalBusiness", "Bakery"], "name": "Crumbs",
           "contactPoint": [{"@type": "ContactPoint", "telephone": "+44 20 7946 0000",
                             "email": "orders@crumbs.test"}],
           "address": "2 Bread Lane, London"}
        ]</script>"""
    )
    info = extract_page(html, "https://crumbs.test/")
    assert (info.name, info.address) == ("Crumbs", "2 Bread Lane, London")
    assert info.phones == ["+44 20 7946 0000"]
    assert info.emails == ["orders@crumbs.test"]


def test_nested_publisher_organization_is_found() -> None:
    html = page(
        head="""<script type="application/ld+json">
        {"@type": "WebPage", "name": "Home",
         "publisher": {"@type": "Organization", "name": "Nested Corp",
                       "logo": {"@type": "ImageObject", "url": "https://nested.test/l.png"}}}
        </script>"""
    )
    assert extract_page(html, "https://nested.test/").name == "Nested Corp"


def test_broken_json_ld_is_skipped_and_comment_wrapped_json_ld_is_read() -> None:
    html = page(
        head="""<script type="application/ld+json">{"@type": "Organization", "name": </script>
        <script type="application/ld+json"><!--
        {"@type": "Organization", "name": "Wrapped Ltd"}
        --></script>"""
    )
    assert extract_page(html, URL).name == "Wrapped Ltd"


def test_opengraph_and_meta_only() -> None:
    html = page(
        head="""<meta property="og:site_name" content="Bluefin">
        <meta property="og:description" content="Data you can trust.">
        <meta name="description" content="Ignored: OpenGraph comes first.">
        <title>Home | Bluefin Analytics</title>"""
    )
    info = extract_page(html, URL)
    assert info.name == "Bluefin"
    assert info.description == "Data you can trust."
    assert info.title_name == "Bluefin Analytics"  # "Home" is generic


def test_title_is_only_a_weak_name() -> None:
    info = extract_page(page(head="<title>Harbor Coffee — Roasters</title>"), URL)
    assert info.name is None
    assert info.title_name == "Harbor Coffee"


def test_long_description_is_shortened_on_a_word_boundary() -> None:
    words = "alpha beta gamma delta " * 40
    info = extract_page(page(head=f'<meta name="description" content="{words}">'), URL)
    assert info.description is not None
    assert len(info.description) <= 300
    assert info.description.endswith("…")
    assert info.description[:-1].split()[-1] in {"alpha", "beta", "gamma", "delta"}


@pytest.mark.parametrize(
    ("text", "emails"),
    [
        ("Write to info@acme.test today.", ["info@acme.test"]),
        ("INFO@ACME.TEST", ["info@acme.test"]),
        ("jane.doe+sales@mail.acme.co.uk.", ["jane.doe+sales@mail.acme.co.uk"]),
        ("info [at] acme [dot] test", ["info@acme.test"]),
        ("info[at]acme[dot]test", ["info@acme.test"]),
        ("info (at) acme (dot) co (dot) uk", ["info@acme.co.uk"]),
        ("info {at} acme {dot} test", ["info@acme.test"]),
        ("first [dot] last [at] acme [dot] test", ["first.last@acme.test"]),
        ("sales [at] acme.test", ["sales@acme.test"]),
        ("Press: (press at acme dot test)", ["press@acme.test"]),
        ("Press: [press at acme dot co dot uk]", ["press@acme.co.uk"]),
        ("meet us at the lab dot com conference", []),
        ("press at acme dot test", []),
        ("<img src='logo@2x.png'> logo@2x.png icon@3x.webp bg@retina.jpg", []),
        ("you@example.com and name@example.org", []),
        ("a@acme.test, A@acme.test and a@acme.test", ["a@acme.test"]),
        ("first..last@acme.test", []),
        ("0123456789abcdef0123456789abcdef@sentry.acme.test", []),
        ("no at sign here", []),
    ],
)
def test_find_emails(text: str, emails: list[str]) -> None:
    assert find_emails(text) == emails


def test_emails_from_mailto_links_and_entities_not_from_scripts() -> None:
    html = page(
        body="""<a href="mailto:Sales@Acme.test?subject=Hi%20there">Sales</a>
        <a href="mailto:a@acme.test,b@acme.test">both</a>
        <p>&lt;ada&#64;acme.test&gt;</p>
        <script>var support = "hidden@acme.test";</script>
        <style>.x { background: url(bg@2x.png) }</style>"""
    )
    assert extract_page(html, URL).emails == [
        "sales@acme.test",
        "a@acme.test",
        "b@acme.test",
        "ada@acme.test",
    ]


def test_phones_from_tel_links_and_microdata_are_deduplicated() -> None:
    html = page(
        body="""<a href="tel:+4930123456">+49 30 123456</a>
        <a href="tel:+49-30-123456">call us</a>
        <a href="tel:%2B1%20555%200100;ext=2">Phone</a>
        <a href="tel:12">too short</a>
        <span itemprop="telephone">+33 1 23 45 67 89</span>"""
    )
    assert extract_page(html, URL).phones == ["+49 30 123456", "+1 555 0100", "+33 1 23 45 67 89"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.linkedin.com/company/acme/", ("linkedin", "https://www.linkedin.com/company/acme")),
        ("https://de.linkedin.com/company/acme?trk=x", ("linkedin", "https://www.linkedin.com/company/acme")),
        ("https://www.linkedin.com/in/jane-doe", ("linkedin", "https://www.linkedin.com/in/jane-doe")),
        ("https://www.linkedin.com/shareArticle?url=x", None),
        ("https://www.linkedin.com/sharing/share-offsite/?url=x", None),
        ("https://twitter.com/acme", ("x", "https://twitter.com/acme")),
        ("https://x.com/acme?ref=site", ("x", "https://x.com/acme")),
        ("https://twitter.com/intent/tweet?text=hi", None),
        ("https://twitter.com/share?url=x", None),
        ("https://twitter.com/acme/status/123", ("x", "https://twitter.com/acme")),
        ("https://m.facebook.com/acme.gmbh", ("facebook", "https://www.facebook.com/acme.gmbh")),
        ("https://www.facebook.com/sharer/sharer.php?u=x", None),
        ("https://www.facebook.com/profile.php?id=1234", ("facebook", "https://www.facebook.com/profile.php?id=1234")),
        ("https://github.com/acme", ("github", "https://github.com/acme")),
        ("https://github.com/acme/repo", None),
        ("https://github.com/features", None),
        ("https://instagram.com/acme.shop/", ("instagram", "https://www.instagram.com/acme.shop")),
        ("https://www.instagram.com/p/Cx123/", None),
        ("https://www.youtube.com/@acme", ("youtube", "https://www.youtube.com/@acme")),
        ("https://www.youtube.com/channel/UC123", ("youtube", "https://www.youtube.com/channel/UC123")),
        ("https://www.youtube.com/watch?v=abc", None),
        ("https://www.acme.test/about", None),
        ("mailto:x@acme.test", None),
    ],
)  # fmt: skip
def test_social_profile(url: str, expected: tuple[str, str] | None) -> None:
    assert social_profile(url) == expected


def test_company_linkedin_beats_a_founders_profile() -> None:
    home = extract_page(page(body='<a href="https://www.linkedin.com/in/founder">me</a>'), URL)
    about = extract_page(page(body='<a href="https://linkedin.com/company/acme">us</a>'), URL)
    assert merge_pages([home, about]).socials["linkedin"] == "https://www.linkedin.com/company/acme"


def test_address_element_keeps_postal_lines_only() -> None:
    html = page(
        body="""<address>Acme Ltd<br>4 Canal Wharf<br>Leeds LS11 5PS<br>
        Tel: +44 113 496 0000<br>Email: <a href="mailto:a@acme.test">a@acme.test</a><br>
        +44 113 496 0001</address>"""
    )
    assert extract_page(html, URL).address == "Acme Ltd, 4 Canal Wharf, Leeds LS11 5PS"


def test_microdata_address() -> None:
    html = page(
        body="""<div itemscope itemtype="http://schema.org/PostalAddress">
        <span itemprop="streetAddress">800 Orchard Lane</span>
        <span itemprop="postalCode">97201</span> <span itemprop="addressLocality">Portland</span>
        </div>"""
    )
    assert extract_page(html, URL).address == "800 Orchard Lane, 97201 Portland"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"streetAddress": ["Bryggen 7", "3. etasje"], "addressCountry": "NO"},
            "Bryggen 7, 3. etasje, NO",
        ),
        ([{"addressLocality": "Bergen"}], "Bergen"),
        ("  Unit 3,\n Tuam Road ", "Unit 3, Tuam Road"),
        ({"postalCode": 5003}, "5003"),
        ({}, None),
        (42.0, None),
    ],
)
def test_format_address(value: object, expected: str | None) -> None:
    assert format_address(value) == expected


def test_merge_prefers_own_domain_emails_and_structured_address() -> None:
    home = PageInfo(
        url="http://127.0.0.1:9/",
        name="Acme",
        domains=["127.0.0.1", "acme.test"],
        emails=["webmaster@agency.test"],
        address="Acme Ltd, Leeds",
        address_rank=1,
    )
    contact = PageInfo(
        url="http://127.0.0.1:9/contact",
        title_name="Contact",
        emails=["sales@acme.test", "SALES@acme.test".lower(), "info@shop.acme.test"],
        phones=["+44 113 496 0000", "0044 113 496 0000"],
        address="4 Canal Wharf, LS11 5PS Leeds, GB",
        address_rank=3,
    )
    merged = merge_pages([home, contact])
    assert merged.name == "Acme"
    assert merged.emails == ["sales@acme.test", "info@shop.acme.test"]
    assert merged.phones == ["+44 113 496 0000"]
    assert merged.address == "4 Canal Wharf, LS11 5PS Leeds, GB"
    assert merged.sources == ["http://127.0.0.1:9/", "http://127.0.0.1:9/contact"]


def test_own_domain_emails_follow_the_public_suffix_list() -> None:
    # Under me.uk every registrant is a domain of its own: a neighbour's address is not ours.
    home = PageInfo(
        url="https://www.acme.me.uk/",
        domains=["acme.me.uk"],
        emails=["hello@othershop.me.uk", "sales@mail.acme.me.uk"],
    )
    assert merge_pages([home]).emails == ["sales@mail.acme.me.uk"]


def test_merge_keeps_foreign_emails_when_the_site_has_none_of_its_own() -> None:
    home = PageInfo(
        url="https://tiny.test/", domains=["tiny.test"], emails=["tiny.shop@gmail.test"]
    )
    assert merge_pages([home]).emails == ["tiny.shop@gmail.test"]


def test_merge_falls_back_to_the_homepage_title() -> None:
    home = PageInfo(url=URL, title_name="Harbor Coffee")
    about = PageInfo(url=URL + "about", title_name="About us")
    assert merge_pages([home, about]).name == "Harbor Coffee"


def test_canonical_and_og_url_count_as_the_sites_own_domain() -> None:
    html = page(
        head="""<link rel="canonical" href="https://www.acme.test/">""",
        body="<p>sales@acme.test or tiny.shop@gmail.test</p>",
    )
    info = extract_page(html, "http://127.0.0.1:8000/")
    assert "acme.test" in info.domains
    assert merge_pages([info]).emails == ["sales@acme.test"]


def test_empty_and_garbage_html_give_an_empty_record() -> None:
    for html in ("", "not html at all", "<html><body></html", "\x00\x01<<<>>>"):
        info = extract_page(html, URL)
        assert (info.name, info.emails, info.phones, info.address) == (None, [], [], None)
