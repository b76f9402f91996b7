"""Data package: report templates. Installed as ``shapgov.reports``."""
