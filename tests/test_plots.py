"""Plots of explanations and Feature Impact: properties read back from the figures."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import shapgov
from shapgov.analyses.impact import mark_redundant, permutation_impact, shap_impact
from shapgov.errors import InputError
from shapgov.sinks import plots

DOLLAR = "price in $ (a$b)"
BAD_MATH = r"a$\undefinedcommand$"  # mathtext would fail to parse this
SCRIPT = "<script>alert(1)</script>"
LONG = "a very long feature name " * 4


@pytest.fixture(scope="module")
def ridge():
    """Ridge on diabetes: 10 numeric features, some with awkward names."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.rename(columns={"bmi": DOLLAR, "bp": SCRIPT, "s1": BAD_MATH, "s2": LONG})
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    e = shapgov.explain(model, X.iloc[:60], background=X.iloc[::10])
    return e, model, X, y


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    return shapgov.explain(model, X.iloc[::3], background=X.iloc[::5])


@pytest.fixture(scope="module")
def onehot(diabetes):
    """'sex' is a string column one-hot encoded inside the pipeline."""
    X, y = diabetes
    encode = ColumnTransformer([("sex", OneHotEncoder(), ["sex"])], remainder=StandardScaler())
    model = make_pipeline(encode, Ridge()).fit(X, y)
    e = shapgov.explain(model, X.iloc[:60], background=X.iloc[::10])
    return e, model, X, y


def _values(e, output=0):
    v = e.values
    return v[:, :, output] if v.ndim == 3 else v


def _ytick_texts(fig):
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def _bars(fig, gid):
    return [p for p in fig.axes[0].patches if p.get_gid() == gid]


def _line_x(fig, gid):
    (line,) = [ln for ln in fig.axes[0].lines if ln.get_gid() == gid]
    return float(line.get_xdata()[0])


# ------------------------------------------------------------------------------ summary


def test_summary_rows_offsets_and_other(ridge):
    e = ridge[0]
    values = _values(e)
    fig = plots.summary(e, max_display=6)
    labels = _ytick_texts(fig)
    assert len(labels) == 6
    assert labels[-1] == "other (5 features)"
    order = np.argsort(-np.abs(values).mean(axis=0), kind="stable")
    top = [e.feature_names[j] for j in order[:5]]
    assert top == plots.top_features(e, 5)
    points = {c.get_label(): c for c in fig.axes[0].collections if isinstance(c, PathCollection)}
    assert list(points) == [*top, "other (5 features)"]
    for j in order[:5]:
        x = np.asarray(points[e.feature_names[j]].get_offsets())[:, 0]
        np.testing.assert_array_equal(np.sort(x), np.sort(values[:, j]))
    other = np.asarray(points["other (5 features)"].get_offsets())[:, 0]
    np.testing.assert_allclose(np.sort(other), np.sort(values[:, order[5:]].sum(axis=1)))
    # rows are stacked top (most important) to bottom, jitter stays within a row
    for i, name in enumerate(points):
        y = np.asarray(points[name].get_offsets())[:, 1]
        assert np.all(np.abs(y - (5 - i)) < 0.5)
    # the figure grows with the number of rows
    assert plots.summary(e, max_display=10).get_figheight() > fig.get_figheight()


def test_summary_colours_follow_value_rank(ridge, onehot):
    e = ridge[0]
    fig = plots.summary(e, max_display=12)
    assert len(_ytick_texts(fig)) == 10 and not _ytick_texts(fig)[-1].startswith("other")
    points = {c.get_label(): c for c in fig.axes[0].collections if isinstance(c, PathCollection)}
    feature = plots.top_features(e, 1)[0]
    x = e.data[feature].to_numpy()
    colours = points[feature].get_facecolors()
    lowest, highest = colours[np.argmin(x)], colours[np.argmax(x)]
    np.testing.assert_allclose(lowest[:3], plots._cmap()(0.0)[:3], atol=1e-6)
    np.testing.assert_allclose(highest[:3], plots._cmap()(1.0)[:3], atol=1e-6)
    assert fig.axes[1].get_ylabel() == "feature value"
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["low", "high"]
    # the string column is grey
    e2 = onehot[0]
    fig2 = plots.summary(e2)
    sex = next(c for c in fig2.axes[0].collections if c.get_label() == "sex")
    assert np.allclose(sex.get_facecolors()[:, :3], to_rgba(plots.NEUTRAL_COLOR)[:3])


def test_summary_multiclass_output_selects_class(iris):
    for k in range(3):
        fig = plots.summary(iris, output=k)
        points = {c.get_label(): c for c in fig.axes[0].collections}
        for j, name in enumerate(iris.feature_names):
            x = np.asarray(points[name].get_offsets())[:, 0]
            np.testing.assert_array_equal(np.sort(x), np.sort(iris.values[:, j, k]))
        assert fig.axes[0].get_title().endswith(f"class {iris.classes[k]}")
        assert "softmax" in fig.axes[0].get_xlabel()


# ------------------------------------------------------------------------------ impact


def test_impact_bar_lengths_other_and_errors(ridge):
    e, model, X, y = ridge
    shap = shap_impact(e)
    perm = permutation_impact(model, X, y, n_repeats=3, sample=150)
    fig = plots.impact_bar(shap, perm, max_display=5)
    labels = _ytick_texts(fig)
    assert len(labels) == 5 and labels[-1] == "other (6 features)"
    sframe = shap.frame.set_index("feature")
    pframe = perm.frame.set_index("feature")
    order = list(shap.frame["feature"])  # sorted by impact
    shap_w = [p.get_width() for p in _bars(fig, "shap")]
    perm_w = [p.get_width() for p in _bars(fig, "permutation")]
    np.testing.assert_allclose(shap_w[:4], sframe.loc[order[:4], "normalized"])
    np.testing.assert_allclose(shap_w[4], sframe.loc[order[4:], "normalized"].sum())
    np.testing.assert_allclose(perm_w[:4], pframe.loc[order[:4], "normalized"])
    np.testing.assert_allclose(perm_w[4], pframe.loc[order[4:], "normalized"].sum())
    # error bars: impact_std on the normalized scale
    (container,) = [c for c in fig.axes[0].containers if c.get_label() == "permutation"]
    segments = container.errorbar.lines[2][0].get_segments()
    assert len(segments) == 5 and len(segments[4]) == 0  # no error bar on "other"
    half = [abs(s[1, 0] - s[0, 0]) / 2 for s in segments[:4]]
    scale = 100.0 / pframe["impact"].max()
    np.testing.assert_allclose(half[:4], pframe.loc[order[:4], "impact_std"] * scale)
    # SHAP only, a DataFrame input, everything fits
    fig = plots.impact_bar(shap.frame, max_display=15)
    assert len(_ytick_texts(fig)) == 10
    np.testing.assert_allclose([p.get_width() for p in _bars(fig, "shap")], sframe["normalized"])


def test_impact_bar_marks_redundant(onehot):
    e, model, X, y = onehot
    perm = mark_redundant(permutation_impact(model, X, y, n_repeats=3, sample=150), X)
    frame = perm.frame.copy()
    frame.loc[frame["feature"] == "s2", "redundant_with"] = "s1"
    fig = plots.impact_bar(shap_impact(e), frame, max_display=15)
    labels = _ytick_texts(fig)
    assert "s2 (redundant)" in labels
    expected = frame["redundant_with"].notna().sum()
    assert sum(label.endswith("(redundant)") for label in labels) == expected


# --------------------------------------------------------------------------- waterfall


@pytest.mark.parametrize("row", [0, 7, -1])
def test_waterfall_adds_up_to_the_output(ridge, row):
    e = ridge[0]
    fig = plots.waterfall(e, row, max_display=5)
    bars = _bars(fig, "contributions")
    base = float(e.expected_value[0])
    fx = float(e.explained_output[row, 0])
    assert bars[0].get_x() == pytest.approx(base, abs=1e-12)  # the bottom bar starts at base
    for below, above in itertools.pairwise(bars):
        assert above.get_x() == pytest.approx(below.get_x() + below.get_width(), abs=1e-9)
    assert base + sum(p.get_width() for p in bars) == pytest.approx(fx, abs=1e-9)
    assert _line_x(fig, "shapgov-output") == pytest.approx(fx, abs=1e-9)
    assert _line_x(fig, "shapgov-base") == base
    labels = _ytick_texts(fig)
    assert len(labels) == 5 and labels[0] == "other (6 features)"
    contrib = _values(e)[row]
    top = int(np.argmax(np.abs(contrib)))
    name = e.feature_names[top]
    assert labels[-1].startswith(plots._short(name) + " = ")
    assert bars[-1].get_width() == pytest.approx(contrib[top], abs=1e-9)
    assert any(t.get_text() == f"f(x) = {fx:.4g}" for t in fig.axes[0].texts)


def test_waterfall_of_a_classifier_says_log_odds_and_the_probability(tmp_path):
    """Behind a logit link the bars are in log-odds: the axis says so, and the title adds
    the row up (base + Σ SHAP = f(x) log-odds) and maps f(x) to the model's probability;
    the row is named by its index label."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6].set_axis(pd.Index(np.arange(5000, 5000 + len(X)), name="id"))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    e = shapgov.explain(model, X.iloc[:20], background=X.iloc[::10])
    assert e.link.name == "logit"
    fig = plots.waterfall(e, 3)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "log-odds: the margin before the logit link"
    base, fx = float(e.expected_value[0]), float(e.explained_output[3, 0])
    p = float(model.predict_proba(X.iloc[[3]])[0, 1])
    shap_sum = float(_values(e)[3].sum())
    assert ax.get_title() == (
        f"row 5003\nbase {base:.4g} + Σ SHAP {shap_sum:+.4g} = {fx:.4g} log-odds = "
        f"probability {p:.4g}"
    )
    assert plots.to_png(fig).startswith(b"\x89PNG")


def test_waterfall_multiclass_and_link_label(iris):
    for k in range(3):
        fig = plots.waterfall(iris, 4, output=k)
        bars = _bars(fig, "contributions")
        assert len(bars) == 4  # 4 features <= max_display: no "other"
        total = iris.expected_value[k] + sum(p.get_width() for p in bars)
        assert total == pytest.approx(iris.explained_output[4, k], abs=1e-9)
        assert "softmax" in fig.axes[0].get_xlabel()


def test_force_bar_meets_at_the_output(ridge, iris):
    for e, row, output in [(ridge[0], 3, 0), (iris, 10, 2), (iris, 10, 0)]:
        fig = plots.force_bar(e, row, max_display=4, output=output)
        pos, neg = _bars(fig, "positive"), _bars(fig, "negative")
        fx = float(e.explained_output[row, output])
        base = float(e.expected_value[output])
        contrib = _values(e, output)[row]
        if pos:
            assert max(p.get_x() + p.get_width() for p in pos) == pytest.approx(fx, abs=1e-9)
        if neg:
            assert min(p.get_x() for p in neg) == pytest.approx(fx, abs=1e-9)
        p_sum = sum(p.get_width() for p in pos)
        n_sum = sum(p.get_width() for p in neg)
        assert p_sum == pytest.approx(contrib[contrib > 0].sum(), abs=1e-9)
        assert n_sum == pytest.approx(-contrib[contrib < 0].sum(), abs=1e-9)
        assert base + p_sum - n_sum == pytest.approx(fx, abs=1e-9)
        assert _line_x(fig, "shapgov-base") == base
        assert len(pos) + len(neg) <= 4 + 1  # top 3, and "other" per sign


# -------------------------------------------------------------------------- dependence


def test_dependence_numeric(ridge):
    e = ridge[0]
    fig = plots.dependence(e, "s5", color_by=None)
    (points,) = fig.axes[0].collections
    xy = np.asarray(points.get_offsets())
    np.testing.assert_array_equal(xy[:, 0], e.data["s5"].to_numpy())
    np.testing.assert_array_equal(xy[:, 1], _values(e)[:, e.feature_names.index("s5")])
    assert len(fig.axes) == 1
    fig = plots.dependence(e, "s5", color_by="age")
    assert fig.axes[1].get_ylabel() == "age (quantile)"
    fig = plots.dependence(e, "s5")  # auto
    title = fig.axes[0].get_title()
    assert "coloured by" in title
    partner = title.split("coloured by ")[1]
    assert partner in {plots._short(n) for n in e.feature_names if n != "s5"}


def test_dependence_categorical_and_multiclass(onehot, iris):
    e = onehot[0]
    fig = plots.dependence(e, "sex", color_by="bmi")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["female", "male"]
    points = next(c for c in ax.collections if c.get_gid() == "points")
    xy = np.asarray(points.get_offsets())
    codes = (e.data["sex"] == "male").to_numpy().astype(float)
    np.testing.assert_array_equal(np.round(xy[:, 0]), codes)
    assert np.all(np.abs(xy[:, 0] - codes) <= 0.3)
    np.testing.assert_array_equal(xy[:, 1], _values(e)[:, e.feature_names.index("sex")])
    # colour by the categorical column: Okabe-Ito colours and a legend
    fig = plots.dependence(e, "bmi", color_by="sex")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["female", "male"]
    fig = plots.dependence(iris, "petal length (cm)", output=1, color_by=None)
    y = np.asarray(fig.axes[0].collections[0].get_offsets())[:, 1]
    np.testing.assert_array_equal(y, iris.values[:, 2, 1])


# ---------------------------------------------------------------- safety, determinism


def _all_plots(e, feature, perm=None):
    return [
        plots.summary(e, max_display=5),
        plots.waterfall(e, 2, max_display=5),
        plots.force_bar(e, 2, max_display=5),
        plots.dependence(e, feature),
        plots.impact_bar(shap_impact(e), perm, max_display=5),
    ]


def test_names_are_plain_text(ridge):
    e = ridge[0]
    figs = [
        *_all_plots(e, DOLLAR),
        plots.dependence(e, BAD_MATH, color_by=DOLLAR),
        plots.summary(e, max_display=12),
    ]
    for fig in figs:
        assert plots.to_png(fig).startswith(b"\x89PNG")  # mathtext would raise on BAD_MATH
    labels = _ytick_texts(figs[-1])
    assert DOLLAR in labels and BAD_MATH in labels and SCRIPT in labels
    short = LONG.strip()[:39] + "…"
    assert short in labels and len(short) == plots.MAX_LABEL
    assert any(label.startswith(DOLLAR + " = ") for label in _ytick_texts(figs[1]))
    assert figs[3].axes[0].get_xlabel() == DOLLAR
    for text in figs[-1].axes[0].get_yticklabels():
        assert text.get_parse_math() is False


def test_deterministic_png(ridge, iris):
    def build():
        return [*_all_plots(ridge[0], DOLLAR), plots.waterfall(iris, 5, output=1)]

    first = [plots.to_png(f, dpi=40) for f in build()]
    assert len(set(first)) == len(first)
    assert [plots.to_png(f, dpi=40) for f in build()] == first
    # a second render of the same figure gives the same bytes (the layout has settled)
    fig = plots.force_bar(ridge[0], 2)
    assert plots.to_png(fig, dpi=40) == plots.to_png(fig, dpi=40)
    a = plots.to_png(plots.summary(iris, random_state=1), dpi=40)
    assert a != plots.to_png(plots.summary(iris, random_state=2), dpi=40)


def test_inputs_unchanged(onehot):
    e, model, X, y = onehot
    perm = mark_redundant(permutation_impact(model, X, y, n_repeats=2, sample=100), X)
    shap = shap_impact(e)
    before = (
        e.values.copy(),
        e.data.copy(deep=True),
        e.expected_value.copy(),
        copy.deepcopy(shap.frame),
        copy.deepcopy(perm.frame),
    )
    _all_plots(e, "sex", perm)
    plots.impact_bar(shap.frame, perm.frame)
    plots.dependence(e, "bmi", color_by="sex")
    np.testing.assert_array_equal(e.values, before[0])
    assert e.data.equals(before[1])
    np.testing.assert_array_equal(e.expected_value, before[2])
    assert shap.frame.equals(before[3]) and perm.frame.equals(before[4])


def test_bad_input_raises_input_error(ridge, iris):
    e = ridge[0]
    cases = [
        lambda: plots.summary(e, max_display=1),
        lambda: plots.summary(e, output=1),
        lambda: plots.summary(iris, output=3),
        lambda: plots.summary(iris, output=-1),
        lambda: plots.summary(e.values),
        lambda: plots.waterfall(e, len(e)),
        lambda: plots.waterfall(e, -len(e) - 1),
        lambda: plots.waterfall(e, 1.5),
        lambda: plots.force_bar(e, 0, max_display=0),
        lambda: plots.force_bar(iris, 0, output=5),
        lambda: plots.dependence(e, "no such feature"),
        lambda: plots.dependence(e, "s5", color_by="nope"),
        lambda: plots.top_features(e, 0),
        lambda: plots.impact_bar(pd.DataFrame({"feature": ["a"]})),
        lambda: plots.impact_bar([1, 2, 3]),
        lambda: plots.impact_bar(shap_impact(e), max_display=1),
        lambda: plots.to_png("not a figure"),
    ]
    for case in cases:
        with pytest.raises(InputError):
            case()
    with pytest.raises(InputError, match="unknown feature 'no such feature'; pass one of"):
        plots.dependence(e, "no such feature")
    with pytest.raises(InputError, match="pass output= between 0 and 2"):
        plots.waterfall(iris, 0, output=3)


def test_top_features(iris):
    for k in range(3):
        mean_abs = np.abs(iris.values[:, :, k]).mean(axis=0)
        expected = [iris.feature_names[j] for j in np.argsort(-mean_abs, kind="stable")]
        assert plots.top_features(iris, 10, output=k) == expected
        assert plots.top_features(iris, 2, output=k) == expected[:2]


def test_no_pyplot_and_lazy_import():
    code = (
        "import sys, shapgov\n"
        "assert 'matplotlib' not in sys.modules, 'import shapgov imported matplotlib'\n"
        "import shapgov.sinks.plots\n"
        "from matplotlib.figure import Figure\n"
        "fig = Figure(); fig.subplots().plot([0, 1])\n"
        "shapgov.sinks.plots.to_png(fig)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mismatch_histogram_counts_every_row_at_its_log_mismatch():
    mismatch = np.array([0.0, 1e-16, 3e-15, 2e-7, 5e-3, 0.2])
    fig = plots.mismatch_histogram(mismatch, pass_tolerance=1e-6, threshold=0.01)
    ax = fig.axes[0]
    heights = np.array([p.get_height() for p in ax.patches])
    lefts = np.array([p.get_x() for p in ax.patches])
    widths = np.array([p.get_width() for p in ax.patches])
    assert heights.sum() == len(mismatch)
    expected = np.log10(np.clip(mismatch, 1e-18, None))
    for value in expected:  # each row sits in the bin that holds its log10 mismatch
        inside = (lefts <= value + 1e-12) & (value < lefts + widths + 1e-12)
        assert heights[inside].sum() >= 1
    lines = sorted(line.get_xdata()[0] for line in ax.get_lines())
    assert np.allclose(lines, [-6.0, -2.0])
    assert plots.to_png(fig) == plots.to_png(
        plots.mismatch_histogram(mismatch, pass_tolerance=1e-6, threshold=0.01)
    )
    with pytest.raises(InputError, match="row_mismatch"):
        plots.mismatch_histogram([], pass_tolerance=1e-6, threshold=0.01)
