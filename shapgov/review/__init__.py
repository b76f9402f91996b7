"""The review workflow: roles and separation of duties, findings, sign-offs and verdicts,
recorded in a hash-chained, signed ledger (:mod:`shapgov.review.ledger`).

- :mod:`~shapgov.review.identity`: who acts (authenticated by the tracking server, or
  declared on a store without authentication);
- :mod:`~shapgov.review.state`: a version's review state folded from the ledger;
- :mod:`~shapgov.review.actions`: the actions and their rules.

Sources: Federal Reserve SR 11-7 (2011), "effective challenge" by staff independent of
development; PRA SS1/23 (2023) principle 4, an audit trail of approvals, findings and
remediation; EU AI Act (Regulation 2024/1689) Article 12, record keeping.
"""

from shapgov.review.actions import (
    add_finding,
    answer_finding,
    close_finding,
    grant_role,
    review_state,
    sign_off,
)
from shapgov.review.identity import Identity, current_identity
from shapgov.review.ledger import Chain, Entry, read_chain
from shapgov.review.state import ROLES, SEVERITIES, STATES, Finding, ReviewState

__all__ = [
    "ROLES",
    "SEVERITIES",
    "STATES",
    "Chain",
    "Entry",
    "Finding",
    "Identity",
    "ReviewState",
    "add_finding",
    "answer_finding",
    "close_finding",
    "current_identity",
    "grant_role",
    "read_chain",
    "review_state",
    "sign_off",
]
