"""Peer adapters for the Shapley-estimation benchmark: shapiq 1.8 and shap estimators.

Setting: a predict function ``f(X2d) -> (rows,)``, one explained row ``x`` of shape ``(n,)``
and a background ``bg`` of shape ``(B, n)``. The game is interventional,
``v(S) = mean_b f(h(S, b))`` with ``h_j = x_j`` for ``j in S`` and ``b_j`` otherwise. One
coalition is one ``v(S)``, i.e. ``B`` model rows (the full coalition may cost 1 row where a
peer knows that every hybrid equals ``x``). A budget ``m`` is the number of coalitions per
explained row, empty and full coalitions included.

Every peer in ``PEERS`` is a function ``run(f, x, bg, budget, seed) -> PeerResult``. It
reports the coalitions it actually used (the benchmark checks ``coalitions <= budget``) and
the model rows it passed to ``f``. A peer whose library is missing (shapiq under Python
3.11) or that raises inside its library raises ``PeerUnavailable`` with the reason;
``run_peer`` turns that into a returned value so one loop can run them all.

How each peer's usage is counted:

* shapiq peers get a ``CountingGame``: coalitions = rows of the coalition matrices it was
  called with (repeats included; ``unique_coalitions`` counts distinct ones), model rows =
  rows passed to ``f`` (``B`` per coalition).
* ``shap.KernelExplainer``: ``f`` is wrapped by ``counting_predict``. Coalitions =
  ``explainer.nsamplesAdded`` (the masks it evaluated, at most ``nsamples``, empty and full
  excluded) + 2 (the empty coalition is ``mean f(bg)``, computed at construction from ``B``
  rows; the full one is ``f(x)``, 1 row). Both are inside ``seconds`` and ``model_rows``.
* ``shap.PermutationExplainer``: it runs ``P = max_evals // (2n' + 1)`` antithetic
  permutations (``n'`` = features where some background value differs from ``x``), each as
  one call of ``f`` holding ``2n' + 1`` masked evaluations (empty, n' prefixes up to the full
  coalition, n' suffixes back to empty). Coalitions = ``P (2n' + 1)`` masked evaluations
  (the empty coalition is evaluated twice per permutation); ``P`` is checked against the
  number of ``f`` calls. Its masked model re-evaluates only background rows that a toggled
  feature changes, so model rows are at most ``B`` per coalition and often fewer.

No peer exposes a standard error through its public API (shap's ``error_bounds`` gives the
spread of half-permutations, which ignores the antithetic pairing), so ``std_error`` is
``None`` for all of them.

Run ``python benchmarks/estimation_peers.py`` for a self-check against exact values.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PredictFn = Callable[[np.ndarray], np.ndarray]
PeerFn = Callable[[PredictFn, np.ndarray, np.ndarray, int, int], "PeerResult"]


class PeerUnavailable(RuntimeError):
    """A peer that cannot run here: library missing, or it raised; the message says why."""


@dataclass(frozen=True)
class PeerResult:
    """One peer's estimate for one explained row, with what it cost.

    ``coalitions`` counts evaluated coalitions including empty and full (repeats included,
    see ``unique_coalitions``); ``model_rows`` counts rows passed to ``f``; ``seconds`` is wall
    time including any explainer construction (the library import is done before the timer);
    ``warnings`` holds the distinct warning messages raised during the run.
    """

    values: np.ndarray
    coalitions: int
    model_rows: int
    seconds: float
    std_error: np.ndarray | None = None
    unique_coalitions: int | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PeerSkipped:
    """Returned by ``run_peer`` instead of a result when the peer is unavailable."""

    name: str
    reason: str


class CountingPredict:
    """Wraps ``f`` and counts the calls and the rows passed to it."""

    def __init__(self, f: PredictFn) -> None:
        self.f = f
        self.calls = 0
        self.rows = 0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Predict ``X`` (2-D) and count it."""
        X = np.asarray(X)
        self.calls += 1
        self.rows += len(X)
        return np.asarray(self.f(X), dtype=float).reshape(len(X))


def counting_predict(f: PredictFn) -> CountingPredict:
    """Wrap ``f`` so the rows a (shap) explainer passes to it are counted."""
    return CountingPredict(f)


class CountingGame:
    """Interventional game ``v(S) = mean_b f(h(S, b))`` that counts its coalitions and rows."""

    def __init__(self, f: PredictFn, x: np.ndarray, bg: np.ndarray) -> None:
        self.f = f
        self.x = np.asarray(x, dtype=float).reshape(-1)
        self.bg = np.atleast_2d(np.asarray(bg, dtype=float))
        if self.bg.shape[1] != self.x.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} features, bg has {self.bg.shape[1]}")
        self.n_players = self.x.shape[0]
        self.coalitions = 0
        self.model_rows = 0
        self.calls = 0
        self._seen: set[bytes] = set()

    @property
    def unique_coalitions(self) -> int:
        """Distinct coalitions evaluated so far."""
        return len(self._seen)

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        """Values of a boolean coalition matrix ``(k, n)`` or vector ``(n,)``, as a fresh ``(k,)``.

        Calls ``f`` once on the ``k * B`` stacked hybrids.
        """
        C = np.atleast_2d(np.asarray(coalitions)).astype(bool)
        if C.shape[1] != self.n_players:
            raise ValueError(f"coalitions have {C.shape[1]} players, game has {self.n_players}")
        k, B = len(C), len(self.bg)
        hybrids = np.where(C[:, None, :], self.x[None, None, :], self.bg[None, :, :])
        y = np.asarray(self.f(hybrids.reshape(k * B, self.n_players)), dtype=float)
        self.calls += 1
        self.coalitions += k
        self.model_rows += k * B
        self._seen.update(row.tobytes() for row in np.packbits(C, axis=1))
        return y.reshape(k, B).mean(axis=1)


def exact_shapley(game: CountingGame) -> np.ndarray:
    """Exact Shapley values of ``game`` by enumerating all ``2**n`` coalitions (small n)."""
    n = game.n_players
    masks = np.arange(2**n)
    C = ((masks[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
    v = game(C)
    sizes = C.sum(axis=1)
    weight = np.array([math.factorial(s) * math.factorial(n - s - 1) for s in range(n)])
    weight = weight / math.factorial(n)
    phi = np.zeros(n)
    for j in range(n):
        without = masks[~C[:, j]]
        phi[j] = np.sum(weight[sizes[without]] * (v[without | (1 << j)] - v[without]))
    return phi


def _peer(library: str) -> Callable[[Callable[..., PeerResult]], PeerFn]:
    """Make a peer: import ``library`` (outside the timer), time the run, collect warnings.

    The decorated function gets the imported module first; any exception it raises becomes
    ``PeerUnavailable``.
    """

    def decorate(fn: Callable[..., PeerResult]) -> PeerFn:
        @functools.wraps(fn)
        def run(f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int) -> PeerResult:
            module = _import(library)
            x = np.asarray(x, dtype=float).reshape(-1)
            bg = np.atleast_2d(np.asarray(bg, dtype=float))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                try:
                    result = fn(module, f, x, bg, int(budget), int(seed))
                except PeerUnavailable:
                    raise
                except Exception as exc:
                    raise PeerUnavailable(f"{type(exc).__name__}: {exc}") from exc
                seconds = time.perf_counter() - start
            messages = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
            values = np.array(result.values, dtype=float, copy=True).reshape(-1)
            if values.shape != x.shape:
                raise PeerUnavailable(f"returned {values.shape} values for {x.shape[0]} features")
            return PeerResult(
                values=values,
                coalitions=result.coalitions,
                model_rows=result.model_rows,
                seconds=seconds,
                std_error=result.std_error,
                unique_coalitions=result.unique_coalitions,
                warnings=messages,
            )

        return run

    return decorate


def _import(library: str) -> Any:
    """Import ``library`` ("shapiq" needs >= 1.8) or raise ``PeerUnavailable``."""
    try:
        module = importlib.import_module(library)
    except ImportError as exc:
        raise PeerUnavailable(f"{library} not importable: {exc}") from exc
    if library == "shapiq":
        major, minor = (int(p) for p in module.__version__.split(".")[:2])
        if (major, minor) < (1, 8):
            raise PeerUnavailable(f"shapiq {module.__version__} < 1.8")
    return module


def _run_shapiq(
    approximator: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int
) -> PeerResult:
    """Run a shapiq approximator on a ``CountingGame`` and read its first-order values."""
    game = CountingGame(f, x, bg)
    iv = approximator.approximate(budget, game)
    return PeerResult(
        values=np.array(iv.get_n_order_values(1), dtype=float),
        coalitions=game.coalitions,
        model_rows=game.model_rows,
        seconds=0.0,
        unique_coalitions=game.unique_coalitions,
    )


@_peer("shapiq")
def run_oddshap(
    shapiq: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shapiq ``OddSHAP(n, random_state=seed)`` (paired, LightGBM surrogate, eta = 10)."""
    return _run_shapiq(shapiq.OddSHAP(len(x), random_state=seed), f, x, bg, budget)


@_peer("shapiq")
def run_leverageshap(
    shapiq: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shapiq ``LeverageSHAP(n, pairing_trick=True, random_state=seed)``."""
    approximator = shapiq.LeverageSHAP(len(x), pairing_trick=True, random_state=seed)
    return _run_shapiq(approximator, f, x, bg, budget)


@_peer("shapiq")
def run_kernelshap_paired(
    shapiq: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shapiq ``KernelSHAP(n, pairing_trick=True, random_state=seed)``."""
    approximator = shapiq.KernelSHAP(len(x), pairing_trick=True, random_state=seed)
    return _run_shapiq(approximator, f, x, bg, budget)


@_peer("shapiq")
def run_regression_msr(
    shapiq: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shapiq ``RegressionMSR(n, index="SV", random_state=seed)`` (default XGBoost proxy)."""
    approximator = shapiq.RegressionMSR(len(x), index="SV", random_state=seed)
    return _run_shapiq(approximator, f, x, bg, budget)


@_peer("shapiq")
def run_proxyshap(
    shapiq: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shapiq ``ProxySHAP(n, max_order=1, index="SV", adjustment=True, random_state=seed)``.

    ``adjustment=True`` adds the MSR residual correction (in-sample, ``k_folds=1``) to the
    XGBoost proxy's Shapley values; unlike ``RegressionMSR`` it keeps ProxySHAP's default
    uniform size weights rather than ``1 / sqrt(s (n - s))``.
    """
    approximator = shapiq.ProxySHAP(
        len(x), max_order=1, index="SV", adjustment=True, random_state=seed
    )
    return _run_shapiq(approximator, f, x, bg, budget)


@_peer("shapiq")
def run_permutation_sv(
    shapiq: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shapiq ``PermutationSamplingSV(n, random_state=seed)`` (2 + (n - 1) per permutation)."""
    return _run_shapiq(shapiq.PermutationSamplingSV(len(x), random_state=seed), f, x, bg, budget)


def _shap_kernel(
    shap: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int, **kwargs: Any
) -> PeerResult:
    """shap ``KernelExplainer`` at ``nsamples = budget - 2``; the global RNG is restored."""
    predict = counting_predict(f)
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        explainer = shap.KernelExplainer(predict, bg)
        values = explainer.shap_values(
            x[None, :], nsamples=max(budget - 2, 0), silent=True, **kwargs
        )
    finally:
        np.random.set_state(state)
    values = np.asarray(values, dtype=float).reshape(-1)
    # M < 2 varying features: shap answers from f(x) and mean f(bg) alone.
    sampled = int(explainer.nsamplesAdded) if int(getattr(explainer, "M", 0)) >= 2 else 0
    return PeerResult(
        values=values,
        coalitions=sampled + 2,
        model_rows=predict.rows,
        seconds=0.0,
        unique_coalitions=sampled + 2,
    )


@_peer("shap")
def run_shap_kernel(
    shap: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shap ``KernelExplainer`` defaults (``l1_reg="num_features(10)"`` since shap 0.47)."""
    return _shap_kernel(shap, f, x, bg, budget, seed)


@_peer("shap")
def run_shap_kernel_nol1(
    shap: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shap ``KernelExplainer`` with ``l1_reg=False`` (plain constrained least squares)."""
    return _shap_kernel(shap, f, x, bg, budget, seed, l1_reg=False)


@_peer("shap")
def run_shap_permutation(
    shap: Any, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult:
    """shap ``PermutationExplainer(f, Independent(bg, max_samples=B), seed=seed)``.

    Called with ``max_evals=budget``; coalitions = masked evaluations ``P (2n' + 1)``.
    """
    predict = counting_predict(f)
    masker = shap.maskers.Independent(bg, max_samples=len(bg))
    state = np.random.get_state()
    try:
        explainer = shap.PermutationExplainer(predict, masker, seed=seed)
        calls_before = predict.calls
        explanation = explainer(x[None, :], max_evals=budget, silent=True)
    finally:
        np.random.set_state(state)
    # the features shap toggles: those where some background value is not close to x
    varying = int(np.sum(np.any(~np.isclose(x[None, :], bg), axis=0)))
    if varying == 0:
        coalitions = 1
    else:
        n_permutations = budget // (2 * varying + 1)
        calls = predict.calls - calls_before
        if calls != n_permutations:
            raise PeerUnavailable(
                f"expected {n_permutations} permutations (one f call each), counted {calls}"
            )
        coalitions = n_permutations * (2 * varying + 1)
    return PeerResult(
        values=np.asarray(explanation.values, dtype=float).reshape(-1),
        coalitions=coalitions,
        model_rows=predict.rows,
        seconds=0.0,
    )


PEERS: dict[str, PeerFn] = {
    "shapiq.OddSHAP": run_oddshap,
    "shapiq.LeverageSHAP": run_leverageshap,
    "shapiq.KernelSHAP(paired)": run_kernelshap_paired,
    "shapiq.RegressionMSR": run_regression_msr,
    "shapiq.ProxySHAP(adj)": run_proxyshap,
    "shapiq.PermutationSV": run_permutation_sv,
    "shap.Kernel(default)": run_shap_kernel,
    "shap.Kernel(l1=False)": run_shap_kernel_nol1,
    "shap.Permutation": run_shap_permutation,
}


def run_peer(
    name: str, f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int, seed: int
) -> PeerResult | PeerSkipped:
    """Run ``PEERS[name]``; an unavailable or failing peer comes back as ``PeerSkipped``."""
    try:
        return PEERS[name](f, x, bg, budget, seed)
    except PeerUnavailable as exc:
        return PeerSkipped(name, str(exc))


def _lightgbm_model(n: int, seed: int) -> tuple[PredictFn, np.ndarray]:
    """A random LightGBM regressor on ``n`` normal features, and its training data."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2000, n))
    y = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + (X[:, 3] > 0) * X[:, 4] + 0.5 * X[:, 5:].sum(1)
    y += 0.1 * rng.normal(size=len(X))
    model = lgb.LGBMRegressor(n_estimators=100, num_leaves=15, verbose=-1, random_state=seed)
    model.fit(X, y)

    def f(rows: np.ndarray) -> np.ndarray:
        return model.predict(rows)

    return f, X


def _warm_up(f: PredictFn, x: np.ndarray, bg: np.ndarray, budget: int) -> None:
    """Run every peer once untimed, so first-call costs (lazy imports) stay out of timings."""
    for name in PEERS:
        run_peer(name, f, x, bg, budget, 0)


def _self_check(n: int, n_rows: int, budgets: list[int], seed: int) -> None:
    """Compare every peer with exact values on a random LightGBM regressor."""
    f, X = _lightgbm_model(n, seed)
    rng = np.random.default_rng(seed + 1)
    bg = X[rng.choice(len(X), size=5, replace=False)]
    rows = X[rng.choice(len(X), size=n_rows, replace=False)]
    exact = [exact_shapley(CountingGame(f, row, bg)) for row in rows]
    _warm_up(f, rows[0], bg, min(budgets))
    print(f"n={n}, B={len(bg)}, rows={n_rows}, 2**n={2**n}; err = max |phi - exact| over rows;")
    print("coal/uniq/rows/sec = max over rows (uniq '-': not observable)")
    header = (
        f"{'peer':26} {'budget':>6} {'max err':>9} {'coal':>5} {'uniq':>5} {'rows':>6} {'sec':>7}"
    )
    for budget in budgets:
        print(header)
        for name in PEERS:
            results = [run_peer(name, f, row, bg, budget, seed + i) for i, row in enumerate(rows)]
            skipped = [r for r in results if isinstance(r, PeerSkipped)]
            if skipped:
                print(f"{name:26} {budget:>6} SKIPPED: {skipped[0].reason}")
                continue
            ok = [r for r in results if isinstance(r, PeerResult)]
            err = max(float(np.max(np.abs(r.values - e))) for r, e in zip(ok, exact, strict=True))
            coal = max(r.coalitions for r in ok)
            uniq = (
                "-"
                if ok[0].unique_coalitions is None
                else max(r.unique_coalitions or 0 for r in ok)
            )
            model_rows = max(r.model_rows for r in ok)
            sec = max(r.seconds for r in ok)
            flag = "  OVER BUDGET" if coal > budget else ""
            print(
                f"{name:26} {budget:>6} {err:>9.2e} {coal:>5} {uniq:>5} {model_rows:>6} "
                f"{sec:>7.3f}{flag}"
            )
            for message in dict.fromkeys(m for r in ok for m in r.warnings):
                print(f"{'':28}warning: {message[:160]}")
        print()


def _timing(n: int, budget: int, seed: int) -> None:
    """Seconds per explained row of every peer at a larger ``n`` (B = 10, no exact values)."""
    f, X = _lightgbm_model(n, seed)
    bg, row = X[:10], X[10]
    _warm_up(f, row, bg, 2 * n + 2)
    print(f"timing: n={n}, B={len(bg)}, budget={budget}, one row")
    for name in PEERS:
        result = run_peer(name, f, row, bg, budget, seed)
        if isinstance(result, PeerSkipped):
            print(f"{name:26} SKIPPED: {result.reason}")
        else:
            print(
                f"{name:26} {result.seconds:8.3f}s coalitions={result.coalitions} "
                f"rows={result.model_rows}"
            )


def main() -> None:
    """Self-check against exact values (default) or a timing run (``--timing-n``).

    Native thread pools (LightGBM's and XGBoost's OpenMP) are limited to ``--threads`` (1 by
    default): on a small loaded machine two OpenMP runtimes oversubscribe the cores and turn a
    0.05 s proxy fit into seconds, which would time the machine, not the peer.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="features of the self-check model")
    parser.add_argument("--rows", type=int, default=2, help="explained rows")
    parser.add_argument("--budgets", type=int, nargs="+", default=[256, 100])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="native threads (0: no limit)")
    parser.add_argument("--timing-n", type=int, default=0, help="time peers at this n instead")
    parser.add_argument("--timing-budget", type=int, default=4800)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.threads:
            # load the OpenMP libraries first: threadpoolctl limits only loaded ones
            for library in ("lightgbm", "xgboost", "shapiq", "shap"):
                with contextlib.suppress(ImportError):
                    importlib.import_module(library)
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=args.threads))
        if args.timing_n:
            _timing(args.timing_n, args.timing_budget, args.seed)
        else:
            _self_check(args.n, args.rows, args.budgets, args.seed)


if __name__ == "__main__":
    main()
