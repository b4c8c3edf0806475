"""Post-incident review (docs/spec/evidence.md): the document model and its build (``model``), Markdown/HTML
rendering (``render``), and the workflow of submissions and the overdue watch (``service``)."""

from shared.review.model import (
    ANALYST_FIELDS,
    OVERDUE,
    REVIEW_DUE_BUSINESS_DAYS,
    SUBMITTED,
    PostIncidentReview,
    ReviewSubmission,
    build_review,
    review_due,
)
from shared.review.render import md_block, md_inline, render_html, render_markdown

__all__ = [
    "ANALYST_FIELDS",
    "OVERDUE",
    "REVIEW_DUE_BUSINESS_DAYS",
    "SUBMITTED",
    "PostIncidentReview",
    "ReviewSubmission",
    "build_review",
    "md_block",
    "md_inline",
    "render_html",
    "render_markdown",
    "review_due",
]
