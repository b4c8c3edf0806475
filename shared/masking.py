"""How personal contact data appears in evidence, logs and comments (a base module: no domain imports).

Evidence is read by partners, auditors and Sentinel comments; a full phone number there helps nobody
and leaks a person's private line, so it is always shown masked.
"""

from __future__ import annotations

import re
from typing import Any


def mask_phone(number: str | None) -> str:
    """A phone number as evidence shows it: the last four digits at most (issue 12: it used to keep the
    country and area prefix, hiding 3 digits, and short numbers not at all). Fewer for short numbers,
    so at least half of any number stays hidden."""
    if not number:
        return ""
    digits = [c for c in number if c.isdigit()]
    keep = min(4, len(digits) // 2)
    return ("+" if number.lstrip().startswith("+") else "") + "***" + "".join(digits[len(digits) - keep :])


_PHONE = re.compile(r"^\+[0-9][0-9 ().-]{5,30}$")


def mask_phones(value: Any) -> Any:
    """``value`` (a JSON-like view) with every string that is a whole phone number masked; other values kept."""
    if isinstance(value, str):
        return mask_phone(value) if _PHONE.match(value) and sum(c.isdigit() for c in value) >= 6 else value
    if isinstance(value, dict):
        return {k: mask_phones(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_phones(v) for v in value]
    return value
