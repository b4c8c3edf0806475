"""How personal contact data appears in evidence, logs and comments (a base module: no domain imports).

Evidence is read by partners, auditors and Sentinel comments; a full phone number there helps nobody
and leaks a person's private line, so it is always shown masked.
"""

from __future__ import annotations


def mask_phone(number: str | None) -> str:
    """A phone number as evidence shows it: country and area prefix, last four digits."""
    if not number:
        return ""
    return number if len(number) <= 8 else f"{number[:5]}***{number[-4:]}"
