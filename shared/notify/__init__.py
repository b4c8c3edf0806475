"""Notification and phone escalation (SPEC 3 priority changes and SLA watchdog, SPEC 5)."""
