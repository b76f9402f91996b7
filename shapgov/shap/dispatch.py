"""``shapgov.shap.Explainer``: shap's dispatching ``Explainer`` on shapgov's engine.

shap picks an algorithm per model (tree, linear, deep, else exact or permutation
sampling); shapgov decomposes the model and picks an explainer per vertex from its
compatibility matrix, so one game covers every model: the interventional game against
the masker's rows (raw data is an ``Independent`` masker of at most 100 rows, drawn as
shap draws them), or, without a masker, the trees' path-dependent game for a pure tree
model. Source of the API followed: shap 0.51 (``shap.Explainer``).
"""

from __future__ import annotations

from typing import Any

from shapgov.errors import ShapOptionError
from shapgov.shap.common import as_rows, explanation_of, game_link_of, governed, shap_shaped
from shapgov.shap.linear import MASKER_ROWS, masker_rows

#: shap's algorithm names shapgov accepts: its own choice per vertex serves them all
ALGORITHMS = ("auto", "tree", "linear", "exact", "permutation", "partition", "additive")


class Explainer:
    """shap's ``Explainer``: ``Explainer(model, masker)(X)`` returns an explanation.

    :param model: A fitted model shapgov decomposes, or a function of a table.
    :param masker: Background rows, a shap masker with ``.data``, ``shap.kmeans``, or
        None (a pure tree model's path-dependent game).
    :param link: shap's ``identity`` or ``logit`` (``shap.links`` or their names):
        ``logit`` plays ``v(S) = logit(mean_b f(x_S, b))`` on a function's probabilities
        (a model explained as a whole by the Kernel explainer; others raise ``InputError``).
    :param algorithm: One of :data:`ALGORITHMS` (``"deep"``: use shapgov's deep explainer
        through ``shapgov.explain``); shapgov's choice per vertex is exact either way.
    :param output_names: Names of the outputs, kept on the explanation.
    :param feature_names: Names of the columns, kept on the explanation.
    :param linearize_link: Accepted (no sampling to linearize).
    :param seed: Seed of the Kernel explainer's sampler where values are sampled.
    :raises ShapOptionError: An algorithm or link shapgov does not offer.
    """

    def __init__(
        self,
        model: Any,
        masker: Any = None,
        link: Any = None,
        algorithm: str = "auto",
        output_names: list[str] | None = None,
        feature_names: list[str] | None = None,
        linearize_link: bool = True,
        seed: int | None = None,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ShapOptionError(
                f"algorithm={algorithm!r}: shapgov picks the exact explainer of each part "
                f"of the model itself; accepted names: {', '.join(ALGORITHMS)}"
            )
        self.link = link
        self.game_link = game_link_of(link)
        self.model = model
        self.masker = masker
        self.data, self.weights = (
            (None, None) if masker is None else masker_rows(masker, limit=MASKER_ROWS)
        )
        self.output_names = output_names
        self.feature_names = feature_names
        self.seed = seed
        self.last_explanation_: Any = None

    def __call__(
        self,
        *args: Any,
        max_evals: int | str = "auto",
        main_effects: bool = False,
        error_bounds: bool = False,
        batch_size: int | str = "auto",
        outputs: Any = None,
        silent: bool = False,
    ) -> Any:
        """The explanation of the rows ``args[0]``: values ``(n, M)`` or ``(n, M, K)``.

        :raises ShapOptionError: More than one table, ``main_effects`` or ``outputs``.
        """
        if len(args) != 1:
            raise ShapOptionError("shapgov explains one table of rows: pass X alone")
        if main_effects or outputs is not None:
            raise ShapOptionError(
                "main_effects= and outputs=: ask for interaction values with "
                "shapgov.explain(..., interactions=True), and select outputs on the result"
            )
        rows = as_rows(args[0])
        options: dict[str, Any] = {}
        if self.seed is not None:
            options["explainer_options"] = {"kernel": {"random_state": self.seed}}
        result = governed(
            self.model,
            rows,
            background=self.data,
            background_weights=self.weights,
            feature_perturbation="interventional" if self.data is not None else "auto",
            game_link=self.game_link,
            **options,
        )
        self.last_explanation_ = result
        values, expected = shap_shaped(result.values, result.expected_value, two_classes=False)
        out = explanation_of(values, expected, rows, result, feature_names=self.feature_names)
        if self.output_names is not None:
            out.output_names = self.output_names
        return out
