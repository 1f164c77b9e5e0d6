"""Generated company websites for benchmarks: `synthetic_sites(n)` makes n sites in memory
(home, about, contact, robots.txt), each with the facts the company pipeline extracts."""

from __future__ import annotations

from sheetbatch.sites import Site

_SYNTHETIC_HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title} | Home</title>
<meta name="description" content="{title} builds tools for team number {n}.">
<meta property="og:site_name" content="{title}">
<script type="application/ld+json">
{{"@context": "https://schema.org", "@type": "Organization", "name": "{title}",
  "url": "https://{domain}/", "telephone": "+1 555 01{n4}",
  "address": {{"@type": "PostalAddress", "streetAddress": "{n} Main Street",
    "postalCode": "9{n4}", "addressLocality": "Springfield", "addressCountry": "US"}},
  "sameAs": ["https://www.linkedin.com/company/{slug}", "https://github.com/{slug}"]}}
</script></head>
<body><header><nav><a href="/">Home</a> <a href="/about">About us</a>
<a href="/contact">Contact</a> <a href="/blog">Blog</a></nav></header>
<main><h1>{title}</h1><p>Welcome to {title}.</p></main></body></html>
"""


_SYNTHETIC_ABOUT = """<!doctype html>
<html><head><title>About {title}</title></head><body><h1>About us</h1>
<p>{title} was founded in {year}. We are a small team.</p></body></html>
"""


_SYNTHETIC_CONTACT = """<!doctype html>
<html><head><title>Contact {title}</title></head><body><h1>Contact</h1>
<p>Write to <a href="mailto:hello@{domain}">hello@{domain}</a>
or call <a href="tel:+15550{n4}">+1 555 0{n4}</a>.</p>
<address>{n} Main Street<br>9{n4} Springfield<br>USA</address></body></html>
"""


def synthetic_sites(n_sites: int) -> list[Site]:
    """`n_sites` generated company sites (home, about, contact, robots.txt), in memory."""
    sites = []
    for n in range(1, n_sites + 1):
        slug = f"company-{n:05d}"
        values = {
            "n": n,
            "n4": f"{n % 10000:04d}",
            "title": f"Company {n:05d}",
            "slug": slug,
            "domain": f"{slug}.test",
            "year": 1950 + n % 70,
        }
        files = {
            "/index.html": _SYNTHETIC_HOME.format(**values).encode(),
            "/about.html": _SYNTHETIC_ABOUT.format(**values).encode(),
            "/contact.html": _SYNTHETIC_CONTACT.format(**values).encode(),
            "/robots.txt": b"User-agent: *\nDisallow: /private/\n",
        }
        sites.append(Site(name=f"site{n:05d}", files=files))
    return sites
