"""Autoescaping HTML templates (issue 16). Pure.

Every value substituted into a template is HTML-escaped unless it is already ``Markup`` (built by
this module from escaped parts), so a hostile incident title or entity name can only ever be text.
Templates are ``string.Template`` strings (``$name``): no expressions, nothing to evaluate.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from string import Template
from typing import Any


class Markup(str):
    """HTML that is safe to emit as is (escaped values, or a template rendered from them)."""

    __slots__ = ()


def esc(value: Any) -> Markup:
    """``value`` as HTML text: Markup passes through, None is empty, everything else is escaped."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(html.escape(str(value), quote=True))


def render(template: str, **values: Any) -> Markup:
    """``template`` with every ``$name`` replaced by its escaped value (a missing name is a KeyError)."""
    return Markup(Template(template).substitute({k: esc(v) for k, v in values.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    """Escaped parts joined (Markup parts kept as they are)."""
    return Markup(esc(sep).join(esc(p) for p in parts))
