"""Stage 2, plan: every vertex matched to its compatibility-matrix row and explainer, and
the one game of the explanation fixed (:func:`shapgov.planning.plan.plan`)."""
