"""Where explanations go for people: plots and the compliance report (the MLflow sink is
:mod:`shapgov.mlflow`)."""
