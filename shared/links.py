"""Which links from alerts may become clickable in the SOC's own emails and reviews (issue 12). Pure.

An alert's ``link`` is written by whoever sent the alert. Made clickable in a P1 email from the SOC's
own mailbox it is phishing from a trusted sender, so only links to the Microsoft security portals are
links; anything else is shown as defanged text (``hxxps://evil[.]example/…``) that no mail client turns
back into a link.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Hosts (and their subdomains) of the portals an analyst opens alerts in.
PORTAL_HOSTS: tuple[str, ...] = (
    "portal.azure.com",
    "security.microsoft.com",
    "security.microsoft.us",
    "portal.azure.us",
    "portal.azure.cn",
    "entra.microsoft.com",
    "intune.microsoft.com",
    "compliance.microsoft.com",
    "purview.microsoft.com",
    "defender.microsoft.com",
    "securitycenter.microsoft.com",
    "securitycenter.windows.com",
    "sentinel.microsoft.com",
)


def portal_link(url: object) -> str | None:
    """``url`` when it is https to an allow-listed portal host, without credentials or odd characters; else None."""
    if not isinstance(url, str) or len(url) > 2000 or any(c in url for c in ' "<>\\`\r\n\t'):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme != "https" or parts.username or parts.password or port not in (None, 443):
        return None
    if any(host == h or host.endswith("." + h) for h in PORTAL_HOSTS):
        return url
    return None


def defang(url: object, limit: int = 200) -> str:
    """A URL as text that mail clients do not turn into a link."""
    text = str(url or "")[:limit]
    text = text.replace("https://", "hxxps://").replace("http://", "hxxp://").replace("://", "[://]")
    return text.replace(".", "[.]")
