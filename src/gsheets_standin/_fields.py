"""Partial responses: the `fields` parameter (`sheets(properties(sheetId,title),merges)`)."""

from __future__ import annotations

from typing import Any

Mask = dict[str, "Mask | None"]
"""Field name -> the mask of its sub-fields (None: all of them)."""


class MaskError(ValueError):
    """A `fields` value that does not parse."""


def parse(text: str) -> Mask:
    """A field mask: comma-separated paths (`a.b`, `a/b`), sub-selections in parentheses."""
    mask, rest = _parse_list(text.replace(" ", ""), 0)
    if rest != len(text.replace(" ", "")):
        raise MaskError(f"Invalid field selection {text}")
    return mask


def _parse_list(text: str, i: int) -> tuple[Mask, int]:
    mask: Mask = {}
    while i < len(text):
        j = i
        while j < len(text) and text[j] not in ",()":
            j += 1
        path = [p for p in text[i:j].replace("/", ".").split(".")]
        if not all(path):
            raise MaskError(f"Invalid field selection {text}")
        sub: Mask | None = None
        if j < len(text) and text[j] == "(":
            sub, j = _parse_list(text, j + 1)
            if j >= len(text) or text[j] != ")":
                raise MaskError(f"Invalid field selection {text}")
            j += 1
        _add(mask, path, sub)
        if j < len(text) and text[j] == ",":
            j += 1
        elif j < len(text) and text[j] == ")":
            return mask, j
        i = j
    return mask, i


def _add(mask: Mask, path: list[str], sub: Mask | None) -> None:
    head, *tail = path
    if not tail:
        if head in mask and mask[head] is not None and sub is not None:
            existing = mask[head]
            assert existing is not None
            for key, value in sub.items():
                existing[key] = value
        else:
            mask[head] = None if (head in mask and mask[head] is None) else sub
        return
    child = mask.get(head, {})
    if child is None:
        return  # already selected whole
    mask[head] = child
    _add(child, tail, sub)


def prune(value: Any, mask: Mask | None) -> Any:
    """`value` keeping only what `mask` selects (lists apply the mask to each item)."""
    if mask is None:
        return value
    if isinstance(value, list):
        return [prune(item, mask) for item in value]
    if not isinstance(value, dict):
        return value
    if "*" in mask:
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if key not in mask:
            continue
        pruned = prune(item, mask[key])
        if pruned == {} and mask[key] is not None and item != {}:
            continue  # as Google: a message none of whose selected fields is set is left out
        kept[key] = pruned
    return kept


def wants(mask: Mask | None, *path: str) -> bool:
    """Whether `mask` selects anything under `path` (so it is worth computing)."""
    node = mask
    for name in path:
        if node is None or "*" in node:
            return True
        if name not in node:
            return False
        node = node[name]
    return True
