"""Analyses of a governed explanation: Feature Impact, Prediction Explanations, XEMP and the
SHAP-vs-XEMP comparison."""
