"""A message as a small document, rendered to HTML and to plain text (so both always say the same thing).

Everything that came from an alert or a person is attacker-controlled: it is only ever placed in a
message through ``esc`` (HTML) or ``plain`` (text, subject, speech), never concatenated into markup.
Links are only rendered when ``safe_link`` accepts them, and always escaped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from shared.notify.actions import ActionLine

MAX_SUBJECT = 200
MAX_FIELD = 500

# -- sanitising ------------------------------------------------------------------------------

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def plain(value: Any, limit: int = MAX_FIELD, single_line: bool = True) -> str:
    """Text safe to show as text: no control or bidi-override characters, bounded length."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if single_line:
        text = " ".join(text.split())
    text = CONTROL.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def esc(value: Any, limit: int = MAX_FIELD) -> str:
    """Text safe inside HTML element content and quoted attributes."""
    return html.escape(plain(value, limit), quote=True)


def safe_link(url: Any) -> str | None:
    """``url`` if it is a plain https (or loopback http) URL without credentials, else None."""
    if not isinstance(url, str) or len(url) > 2000 or CONTROL.search(url) or any(c in url for c in ' "<>\\`'):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.username or parts.password or not parts.hostname:
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")):
        return url
    return None


# -- the document model ------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # "h" | "p" | "notice" | "kv" | "bullets" | "actions" | "links" | "table"
    text: str = ""
    rows: list[Any] = field(default_factory=list)
    tone: str = "info"  # notice: "info" | "warn" | "alert"


@dataclass
class Doc:
    title: str
    banner: str
    colour: str
    blocks: list[Block] = field(default_factory=list)

    def h(self, text: str) -> None:
        self.blocks.append(Block("h", text))

    def p(self, text: str) -> None:
        self.blocks.append(Block("p", text))

    def notice(self, text: str, tone: str = "info") -> None:
        self.blocks.append(Block("notice", text, tone=tone))

    def kv(self, rows: list[tuple[str, Any]]) -> None:
        self.blocks.append(Block("kv", rows=[(k, v) for k, v in rows if v not in (None, "", [])]))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(Block("bullets", rows=list(items)))

    def actions(self, lines: list[ActionLine]) -> None:
        self.blocks.append(Block("actions", rows=list(lines)))

    def links(self, links: list[tuple[str, str]]) -> None:
        if links:
            self.blocks.append(Block("links", rows=list(links)))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(Block("table", text="\x1f".join(header), rows=rows))


PRIORITY_COLOURS = {"P1": "#b00020", "P2": "#d35400", "P3": "#b7950b", "P4": "#2e7d32"}
_TONES = {"info": ("#eef4fb", "#1f4e79"), "warn": ("#fff4e5", "#8a4b00"), "alert": ("#fdecea", "#8b0000")}
_CELL = 'style="padding:4px 8px;border:1px solid #ddd;text-align:left;vertical-align:top"'


def render_html(doc: Doc) -> str:
    out = [
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>',
        '<body style="font-family:Segoe UI,Arial,sans-serif;font-size:14px;color:#222">',
        f'<div style="background:{doc.colour};color:#fff;padding:10px 14px;font-weight:bold">{esc(doc.banner)}</div>',
        f'<h2 style="margin:14px 0 8px 0">{esc(doc.title, MAX_SUBJECT)}</h2>',
    ]
    for b in doc.blocks:
        if b.kind == "h":
            out.append(f'<h3 style="margin:16px 0 6px 0">{esc(b.text)}</h3>')
        elif b.kind == "p":
            out.append(f"<p>{esc(b.text, 2000)}</p>")
        elif b.kind == "notice":
            bg, fg = _TONES.get(b.tone, _TONES["info"])
            out.append(
                f'<p style="background:{bg};color:{fg};padding:8px 10px;border-left:4px solid {fg}">'
                f"{esc(b.text, 2000)}</p>"
            )
        elif b.kind == "kv":
            rows = "".join(f"<tr><th {_CELL}>{esc(k)}</th><td {_CELL}>{esc(v)}</td></tr>" for k, v in b.rows)
            out.append(f'<table style="border-collapse:collapse">{rows}</table>')
        elif b.kind == "bullets":
            out.append("<ul>" + "".join(f"<li>{esc(i, 1000)}</li>" for i in b.rows) + "</ul>")
        elif b.kind == "actions":
            if not b.rows:
                out.append("<p>No containment action was taken or planned.</p>")
                continue
            head = "".join(f"<th {_CELL}>{h}</th>" for h in ("Action", "Target", "Result", "Detail"))
            body = "".join(
                f"<tr><td {_CELL}>{esc(a.kind)}</td><td {_CELL}>{esc(a.target)}</td>"
                f'<td {_CELL}><span style="font-weight:bold;color:{"#b00020" if a.failed else "#222"}">'
                f"{esc(a.state.value)}</span></td><td {_CELL}>{esc(a.detail)}</td></tr>"
                for a in b.rows
            )
            out.append(f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>')
        elif b.kind == "links":
            out.append(
                "<ul>"
                + "".join(
                    f'<li><a href="{html.escape(url, quote=True)}">{esc(label)}</a></li>' for label, url in b.rows
                )
                + "</ul>"
            )
        elif b.kind == "table":
            head = "".join(f"<th {_CELL}>{esc(h)}</th>" for h in b.text.split("\x1f"))
            body = "".join("<tr>" + "".join(f"<td {_CELL}>{esc(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            out.append(f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>')
    out.append(
        '<p style="color:#666;font-size:12px;margin-top:20px">Sent by soc-responder. Every notification '
        "and call attempt is recorded in the incident's tamper-evident evidence.</p></body></html>"
    )
    return "".join(out)


def render_text(doc: Doc) -> str:
    out = [plain(doc.banner), plain(doc.title, MAX_SUBJECT), ""]
    for b in doc.blocks:
        if b.kind == "h":
            out += ["", plain(b.text).upper()]
        elif b.kind in ("p", "notice"):
            out.append(("! " if b.tone in ("warn", "alert") and b.kind == "notice" else "") + plain(b.text, 2000))
        elif b.kind == "kv":
            out += [f"{plain(k)}: {plain(v)}" for k, v in b.rows]
        elif b.kind == "bullets":
            out += [f"- {plain(i, 1000)}" for i in b.rows]
        elif b.kind == "actions":
            if not b.rows:
                out.append("No containment action was taken or planned.")
            out += [
                f"- {plain(a.kind)} {plain(a.target)}: {a.state.value.upper() if a.failed else a.state.value}"
                + (f" ({plain(a.detail)})" if a.detail else "")
                for a in b.rows
            ]
        elif b.kind == "links":
            out += [f"- {plain(label)}: {url}" for label, url in b.rows]
        elif b.kind == "table":
            out.append(" | ".join(plain(h) for h in b.text.split("\x1f")))
            out += [" | ".join(plain(c) for c in row) for row in b.rows]
    out += [
        "",
        (
            "Sent by soc-responder. Every notification and call attempt is recorded in the incident's "
            "tamper-evident evidence."
        ),
    ]
    return "\n".join(out) + "\n"
