"""Partner preflight (issue 11, docs/spec/tenancy.md): can the app act for a partner right now?

``checks`` (pure: which rights are granted, wildcards included), ``ports`` (what preflight needs from
Entra ID, Graph and ARM), ``run`` (one partner's report: ``PartnerPreflight``), ``daily`` (every
partner, evidenced, the SOC told about those not ready: ``DailyPreflight``).
"""
