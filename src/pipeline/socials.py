"""Social-network profiles among a page's links: which link is a company's profile, and the
canonical URL of each (share, intent and post links are not profiles). Pure functions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

_NOT_PROFILES: dict[str, frozenset[str]] = {
    "x": frozenset(
        [
            "share",
            "intent",
            "home",
            "search",
            "hashtag",
            "i",
            "explore",
            "login",
            "signup",
            "settings",
            "tos",
        ]
    ),
    "facebook": frozenset(
        [
            "sharer",
            "sharer.php",
            "share",
            "share.php",
            "dialog",
            "plugins",
            "login",
            "tr",
            "events",
            "groups",
        ]
    ),
    "github": frozenset(
        [
            "features",
            "about",
            "pricing",
            "login",
            "join",
            "sponsors",
            "marketplace",
            "topics",
            "explore",
            "site",
            "security",
            "enterprise",
            "orgs",
            "collections",
            "trending",
        ]
    ),
    "instagram": frozenset(["p", "reel", "reels", "explore", "accounts", "stories", "tv", "share"]),
}
_HANDLE = {
    "x": r"[A-Za-z0-9_]{1,15}",
    "github": r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})",
    "instagram": r"[A-Za-z0-9_.]{1,30}",
    "facebook": r"[A-Za-z0-9.\-]{2,80}",
}


def social_profile(url: str) -> tuple[str, str] | None:
    """`(network, canonical profile URL)` for a profile link, or None for anything else.

    Networks: linkedin, x, facebook, github, instagram, youtube. Share, intent and post links
    are not profiles.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    host = re.sub(r"^(?:www|m|mobile|web|[a-z]{2}(?:-[a-z]{2})?)\.", "", host)
    segs = [unquote(s) for s in parts.path.split("/") if s]
    if parts.scheme not in ("http", "https") or not segs:
        return None
    first = segs[0].lower()
    if host == "linkedin.com":
        if first in ("company", "in", "school", "showcase") and len(segs) >= 2:
            return "linkedin", f"https://www.linkedin.com/{first}/{segs[1]}"
        return None
    network = {"twitter.com": "x", "x.com": "x", "facebook.com": "facebook", "fb.com": "facebook"}
    network |= {"github.com": "github", "instagram.com": "instagram"}
    if host in network:
        name = network[host]
        if name == "facebook" and first == "profile.php":
            query = re.search(r"(?:^|&)id=(\d+)", parts.query)
            if query is None:
                return None
            return name, f"https://www.facebook.com/profile.php?id={query.group(1)}"
        if name == "github" and len(segs) > 1:
            return None  # a repository or a page, not the owner's profile
        if first in _NOT_PROFILES[name] or not re.fullmatch(_HANDLE[name], segs[0]):
            return None
        prefix = {"facebook": "https://www.facebook.com", "instagram": "https://www.instagram.com"}
        return name, f"{prefix.get(name, f'https://{host}')}/{segs[0]}"
    if host == "youtube.com":
        if first in ("channel", "c", "user") and len(segs) >= 2:
            return "youtube", f"https://www.youtube.com/{first}/{segs[1]}"
        if first.startswith("@") and len(first) > 1:
            return "youtube", f"https://www.youtube.com/{segs[0]}"
    return None


def add_social(socials: dict[str, list[str]], url: str, *, front: bool = False) -> None:
    """Add `url`'s profile (if it is one) to `socials` by network, once; `front` first."""
    profile = social_profile(url)
    if profile is None:
        return
    urls = socials.setdefault(profile[0], [])
    if profile[1] in urls:
        return
    if front:
        urls.insert(0, profile[1])
    else:
        urls.append(profile[1])


def best_profile(network: str, urls: Sequence[str]) -> str:
    """The profile to show of a network's candidates."""
    if network == "linkedin":  # the company page over a founder's personal profile
        return sorted(urls, key=lambda u: "/in/" in u)[0]
    return urls[0]
