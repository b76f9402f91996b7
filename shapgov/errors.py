"""Typed errors and warnings. Each subclasses the built-in it behaves like."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sklearn.exceptions import NotFittedError

if TYPE_CHECKING:
    from shapgov.combination.policy import AdditivityReport


class ShapgovError(Exception):
    """Base class of every error shapgov raises on purpose."""


class InputError(ShapgovError, ValueError):
    """The data given to an explainer does not fit the model."""


class CatalogueError(InputError):
    """A reason catalogue is malformed, or does not cover the model's inputs."""


class ProtectedAttributeError(InputError):
    """A protected attribute is a model input or is named by a reason catalogue, so no
    adverse-action reasons may be derived."""


class ColumnMismatchError(InputError):
    """Columns of X (count or names) differ from what the model was fitted on."""


class MissingValueError(InputError):
    """NaN reached a modeling vertex that cannot take missing values."""


class NotFittedModelError(ShapgovError, NotFittedError):
    """The model (or one of its vertices) has not been fitted."""


class UnsupportedModelError(ShapgovError, TypeError):
    """No decomposer, matrix row or explainer covers this model."""


class UndecomposableModelError(UnsupportedModelError):
    """No plugin can decompose the model (or trace a transformer's columns); the whole
    model can still be explained through its outputs (``opaque=True``)."""


class ExactBudgetError(ShapgovError, ValueError):
    """An exact computation would exceed its size budget."""


class PluginError(ShapgovError, RuntimeError):
    """A plugin is misconfigured (for example two explainers share a name)."""


class DuplicateExplainerError(PluginError):
    """Two plugins registered explainers under the same name."""


class MatrixError(ShapgovError, ValueError):
    """The compatibility matrix data is malformed."""


class AdditivityError(ShapgovError, ArithmeticError):
    """SHAP values failed the additivity policy and were withheld.

    Carries only diagnostics (``report``): never the values themselves.
    """

    def __init__(self, report: AdditivityReport) -> None:
        self.report = report
        super().__init__(report.describe())


class AdditivityCheckError(ShapgovError, ArithmeticError):
    """Values handed to ``assert_additivity`` (``shapgov.shap``, shap's helper) do not add
    up to the outputs handed with them."""


class ShapOptionError(InputError):
    """A shap argument (``shapgov.shap``) that has no meaning in shapgov: the message says
    what shapgov computes instead (e.g. Saabas values, ``approximate=True``)."""


class AdditivityWarning(UserWarning):
    """SHAP values reproduce the predictions only within the warn band."""


class ModelOutputError(ShapgovError, ValueError):
    """A model or predict function returned output of the wrong shape, or NaN/inf."""


class PerformanceWarning(UserWarning):
    """The requested work is large enough to be slow; the message says how to shrink it."""


class SmallWindowWarning(UserWarning):
    """Time windows too small for their statistics to mean much (a handful of rows)."""


class FallbackWarning(UserWarning):
    """A model could not be decomposed and is explained as a whole by the Kernel explainer."""


class UnapprovedModelError(ShapgovError, PermissionError):
    """A registered model version has no approved shapgov verdict for its current set;
    approve it (``shapgov approve NAME VERSION``) first."""


class TrackingPermissionError(ShapgovError, PermissionError):
    """The tracking server refused a write for lack of permission (MLflow's auth app)."""


class ApprovalPermissionError(TrackingPermissionError):
    """The tracking server refused a write the approval needs (the user lacks EDIT on the
    registered model); nothing was recorded."""


class ApprovalConflictError(ShapgovError, RuntimeError):
    """Concurrent approvals of one version kept overwriting each other's verdict tags;
    nothing consistent could be recorded. Approve again."""


class TrackingUnavailableError(ShapgovError, ConnectionError):
    """The tracking server did not answer (down, restarting, or unreachable). Whatever was
    being written is incomplete and approval rejects it; retry the same call."""


class WorkerEnvironmentError(ShapgovError, RuntimeError):
    """Spark's Python workers cannot run shapgov: they run the interpreter named by
    ``PYSPARK_PYTHON`` (``python3`` when unset), not the driver's. Point it at a Python with
    shapgov installed."""


class UnsignedVerdictWarning(UserWarning):
    """A verdict was recorded without an approval key: nothing tells it from a tag set by
    hand, so ``shapgov verify`` does not accept it."""


class ReviewRefusedError(ShapgovError, PermissionError):
    """A rule of the review workflow refused the action (a role the user lacks, the
    version's own developer approving, no sign-off by another user, an open High finding);
    the message names the rule and what would satisfy it. Nothing was recorded."""


class IdentityError(InputError):
    """Who acts is unknown or contradicts the tracking server's sign-in: declare the user
    (``SHAPGOV_USER`` or ``--as``) on a store without authentication, or sign in as that
    user (``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``) on a shared server."""


class LedgerConflictError(ApprovalConflictError):
    """Concurrent review actions kept claiming the same place in the ledger; nothing was
    recorded. Run the action again."""


class LedgerIntegrityError(ShapgovError, RuntimeError):
    """The review ledger's hash chain does not verify (an entry deleted, altered,
    reordered or inserted); no review action is taken on a ledger that has been
    tampered with. The message names the entries; restore them (``mlflow runs restore``)
    or have an administrator investigate."""


class DocumentTemplateError(InputError):
    """A model document's Word template is unreadable or uses a placeholder shapgov does
    not fill (the message lists the documented ones)."""


class AlteredSetError(InputError):
    """An artifact set's file is missing or no longer matches the SHA-256 its manifest (or
    the signed verdict) holds: the set was altered after it was logged or approved."""


class DocumentRendererError(ShapgovError, RuntimeError):
    """The PDF cannot be printed: no Chromium and ChromeDriver on this machine (or they
    failed); the message says what to install."""
