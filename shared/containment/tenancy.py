"""Which directory an incident's containment acts in (issue 11, docs/spec/tenancy.md).

Accounts are read, disabled and re-enabled in the incident partner's own Entra tenant (its ``tenantId``),
through ``Directories.for_tenant``; an incident with no known partner uses the SOC's own directory (and
its actions are held: no partner owns anything automatically).
"""

from __future__ import annotations

from shared.containment.ports import Directories, Directory
from shared.models import Incident
from shared.partners import Partner, PartnerRegistry


def partner_directory(
    directories: Directories, partners: PartnerRegistry, incident: Incident
) -> tuple[Directory, Partner | None, str | None]:
    """(the directory of the incident's partner, that partner, its tenant): the SOC's own without one."""
    partner = partners.get(incident.partner_id)
    tenant = partner.tenantId if partner else None
    return directories.for_tenant(tenant), partner, tenant
