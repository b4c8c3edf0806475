"""Notification and phone escalation (docs/spec/triage.md priority changes and SLA watchdog, docs/spec/notification.md)."""
