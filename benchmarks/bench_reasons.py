"""Benchmark: what adverse-action reasons cost next to the grouped explanation alone.

Workload (issue 32): a LightGBM classifier (300 trees x 31 leaves) of a planted default
risk over 40 inputs that a catalogue of 12 reasons groups (1 to 6 inputs each); the
explained rows are all declined (probability of default >= the cutoff), the reference
population is 200 approved applicants. ``shapgov.reasons`` scores the rows, explains the
grouped game of the declined ones against the reference population and selects each
row's reasons; the peer is ``shapgov.explain_groups`` of the same rows, same groups, same
background. The reasons' group values must equal the grouped explanation's exactly
(checked before any time is printed). Then the stability cost: ``stability=R`` re-derives
the reasons against R bootstrap resamples of the reference population, one grouped
explanation each; the cost per resample is (time with R resamples - time without) / R.

Run: python benchmarks/bench_reasons.py [--rows 100000] [--resamples 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parent))
from timing import best_of

#: Inputs per catalogue entry: 12 entries, 40 inputs.
GROUP_SIZES = (6, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2, 1)
TREES, LEAVES = 300, 31
REFERENCE_ROWS = 200
#: Share of the generated applicants the cutoff declines.
DECLINE_SHARE = 0.3


def groups() -> dict[str, list[str]]:
    """Reason code -> its inputs (``g01_1``, ``g01_2``, ...)."""
    return {
        f"R{g:02d}": [f"g{g:02d}_{j}" for j in range(1, size + 1)]
        for g, size in enumerate(GROUP_SIZES, 1)
    }


def applicants(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Correlated inputs within each group (a shared factor), as bureau attributes are."""
    blocks = []
    for inputs in groups().values():
        factor = rng.normal(size=(n, 1))
        noise = rng.normal(size=(n, len(inputs)))
        blocks.append(pd.DataFrame(0.7 * factor + 0.7 * noise, columns=inputs))
    return pd.concat(blocks, axis=1)


def risk(X: pd.DataFrame) -> np.ndarray:
    """The planted log-odds: each group's mean, weighted, a few interactions."""
    weights = np.linspace(1.2, 0.1, len(GROUP_SIZES))
    means = np.column_stack([X[cols].mean(axis=1) for cols in groups().values()])
    return -1.2 + means @ weights + 0.4 * means[:, 0] * means[:, 1] - 0.3 * means[:, 2] ** 2


def workload(rows: int, seed: int = 0):
    """The fitted model, the cutoff, ``rows`` declined applicants and 200 approved ones."""
    from lightgbm import LGBMClassifier

    rng = np.random.default_rng(seed)
    train = applicants(20_000, rng)
    y = rng.random(len(train)) < 1 / (1 + np.exp(-risk(train)))
    model = LGBMClassifier(n_estimators=TREES, num_leaves=LEAVES, verbose=-1, random_state=0)
    model.fit(train, y)
    cutoff = float(np.quantile(model.predict_proba(train)[:, 1], 1 - DECLINE_SHARE))
    declined, approved = [], []
    while sum(map(len, declined)) < rows or sum(map(len, approved)) < REFERENCE_ROWS:
        pool = applicants(max(rows, 10_000), rng)
        score = model.predict_proba(pool)[:, 1]
        declined.append(pool[score >= cutoff])
        approved.append(pool[score < cutoff])
    X = pd.concat(declined, ignore_index=True).iloc[:rows]
    reference = pd.concat(approved, ignore_index=True).iloc[:REFERENCE_ROWS]
    return model, cutoff, X, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="declined rows explained")
    parser.add_argument(
        "--resamples", type=int, default=2, help="stability resamples timed (cost per resample)"
    )
    args = parser.parse_args()

    import shapgov
    from shapgov.adverse_action.catalogue import make_catalogue

    started = time.perf_counter()
    model, cutoff, X, reference = workload(args.rows)
    catalogue = make_catalogue(
        name="bench",
        version="1",
        reasons=[
            {"code": c, "statement": f"Reason {c}", "inputs": inputs, "adverse": "high"}
            for c, inputs in groups().items()
        ],
    )
    decision = shapgov.Decision(cutoff=cutoff)
    print(
        f"LightGBM classifier, {TREES} trees x {LEAVES} leaves; {X.shape[1]} inputs in "
        f"{len(GROUP_SIZES)} catalogue entries; {len(X):,} declined rows (probability >= "
        f"{cutoff:.3f}), {len(reference)} approved reference rows "
        f"(set up in {time.perf_counter() - started:.0f}s)"
    )

    def reasons(stability: int = 0):
        return shapgov.reasons(
            model, X, catalogue=catalogue, decision=decision, reference=reference,
            stability=stability,
        )  # fmt: skip

    def grouped():
        return shapgov.explain_groups(
            model, X, players=catalogue.groups(), background=reference, member_sums=False
        )

    # the compiled kernels load once per process (numba's cache): not part of either time
    shapgov.reasons(
        model, X.iloc[:50], catalogue=catalogue, decision=decision, reference=reference,
        stability=1,
    )  # fmt: skip
    t_reasons, r = best_of(reasons, 1)
    t_grouped, g = best_of(grouped, 1)
    assert r.declined.all(), "every benchmark row is declined"
    assert r.players == g.names, (r.players, g.names)
    assert np.array_equal(r.group_values, g.values), "the reasons' values are not the game's"
    has = (r.status == "reasons").mean()
    print(
        f"agreement: the reasons' group values equal explain_groups' exactly "
        f"({r.group_values.shape[0]:,} rows x {r.group_values.shape[1]} players); "
        f"{has:.1%} of the rows have reasons, mean "
        f"{np.mean([sum(c is not None for c in row) for row in r.codes]):.2f} each"
    )
    t_stable, s = best_of(lambda: reasons(args.resamples), 1)
    per = (t_stable - t_reasons) / args.resamples
    rows = [
        ("explain_groups (the grouped explanation alone)", t_grouped, 1.0),
        ("shapgov.reasons (scores, grouped game, selection)", t_reasons, t_reasons / t_grouped),
        (f"shapgov.reasons, stability={args.resamples}", t_stable, t_stable / t_grouped),
        ("stability, per resample", per, per / t_grouped),
    ]
    print(f"\n{'step':<52}{'seconds':>10}{'x grouped':>11}")
    for name, seconds, ratio in rows:
        print(f"{name:<52}{seconds:>10.2f}{ratio:>10.2f}x")
    print(
        f"\nreasons / grouped explanation: {t_reasons / t_grouped:.2f}x (target <= 1.3x); "
        f"stability costs {per:.2f}s per resample ({per / t_grouped:.2f}x the grouped "
        f"explanation); mean share of reasons kept over {args.resamples} resamples "
        f"{s.stability['mean_share_kept']:.3f}"
    )


if __name__ == "__main__":
    main()
