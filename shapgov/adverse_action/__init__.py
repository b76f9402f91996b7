"""Adverse-action reasons: the governed explanation becomes the statement of specific
reasons a declined applicant is given (:func:`shapgov.reasons`)."""
