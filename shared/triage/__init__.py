"""Triage tooling a SOC lead tunes rules with (issue 13): the alert catalogue and the rules derived from it
(``catalogue``), the coverage report (``python -m shared.triage.coverage``) and the what-if replay of past
alerts through the current rules (``replay``, ``python -m shared.triage.replay``).

Scoring itself stays in ``shared/scoring.py`` (a base module every use case reads).
"""
