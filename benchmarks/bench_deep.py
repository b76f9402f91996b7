"""Benchmark: the Deep explainer on PyTorch networks against shap's DeepExplainer and
captum's DeepLiftShap, same process, 2 threads.

1. DeepLIFT (rescale), MLP 50 -> 64 -> 64 -> 1, 1,000 rows, 100 background rows, ReLU
   and SiLU: shapgov vs shap.DeepExplainer vs captum.attr.DeepLiftShap. ReLU: the three
   must agree (max |diff| / max |value|) before ratios print; SiLU: each one's additivity
   gap is printed (shap's DeepExplainer does not know SiLU: the seed's failure).
2. DeepLIFT against exact values, per activation: 12-feature networks (two hidden layers
   of 32, float64), mean |DeepLIFT - exact| / mean |exact| (DeepLIFT is an approximation:
   this says how good).
3. Exact mode: rows/s on the seed's tutorial MLP (diabetes, 10 features, 5 logistic units)
   and 12-feature ReLU, SELU, GELU and SiLU networks (12 -> 32 -> 32 -> 1, float64), and the
   ratio to Kernel's exact enumeration of the same game.

Run: python benchmarks/bench_deep.py [--quick] [--exact-only]
     (needs torch; shap and captum optional)
"""

from __future__ import annotations

import argparse
import os
import warnings

THREADS = 2
os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from timing import best_of  # noqa: E402

torch.set_num_threads(THREADS)
nn = torch.nn
ACTS = {
    "ReLU": nn.ReLU,
    "LeakyReLU": nn.LeakyReLU,
    "ELU": nn.ELU,
    "SELU": nn.SELU,
    "SiLU": nn.SiLU,
    "GELU": nn.GELU,
    "Mish": nn.Mish,
    "Softplus": nn.Softplus,
    "Hardswish": nn.Hardswish,
    "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh,
}


def timed(fn, repeats=3):
    """``(result, seconds)``: the best of ``repeats`` calls."""
    seconds, out = best_of(fn, repeats)
    return out, seconds


def train(net, X, y, steps=150):
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y[:, None])
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(net(Xt), yt).backward()
        opt.step()
    return net.eval()


def data(n, m, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)).astype(dtype)
    y = (np.tanh(X[:, :5].sum(1)) + X[:, 5] * X[:, 6] + 0.1 * X[:, 7:].sum(1)).astype(dtype)
    return X, y


def deeplift_vs_peers(quick: bool) -> None:
    from shapgov.explainers.deeplift import deeplift_values
    from shapgov_plugins.torch_networks import TorchNetwork

    n = 200 if quick else 1000
    X, y = data(4000, 50, 1)
    rows, bg = X[:n], X[2000:2100]
    print(f"1. DeepLIFT, MLP 50 -> 64 -> 64 -> 1 (float32), {n} rows x {len(bg)} background")
    for name in ("ReLU", "SiLU"):
        torch.manual_seed(0)
        act = ACTS[name]
        net = train(
            nn.Sequential(nn.Linear(50, 64), act(), nn.Linear(64, 64), act(), nn.Linear(64, 1)),
            X,
            y,
        )
        network = TorchNetwork(net).network_
        deeplift_values(network, rows[:2], bg)
        (ours, base), t_ours = timed(lambda nw=network: deeplift_values(nw, rows, bg))
        with torch.no_grad():
            out = net(torch.as_tensor(rows)).numpy()[:, 0].astype(float)
        gap_ours = np.abs(ours[:, :, 0].sum(1) + base[0] - out).max()
        line = f"   {name:5s} shapgov {t_ours:6.2f}s (additivity gap {gap_ours:.1e})"
        peers = {}
        try:
            import shap

            explainer = shap.DeepExplainer(net, torch.as_tensor(bg))

            def run_shap(explainer=explainer):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    v = explainer.shap_values(torch.as_tensor(rows), check_additivity=False)
                return np.asarray(v).reshape(len(rows), -1)

            peers["shap DeepExplainer"] = (
                *timed(run_shap, 1),
                float(np.ravel(explainer.expected_value)[0]),
            )
        except ImportError:
            pass
        try:
            from captum.attr import DeepLiftShap

            captum = DeepLiftShap(net)

            def run_captum(captum=captum):
                a = captum.attribute(torch.as_tensor(rows), baselines=torch.as_tensor(bg))
                return a.detach().numpy()

            peers["captum DeepLiftShap"] = (*timed(run_captum, 1), float(base[0]))
        except ImportError:
            pass
        for peer, (theirs, t, their_base) in peers.items():
            gap = np.abs(theirs.sum(1) + their_base - out).max()
            dis = np.abs(theirs - ours[:, :, 0]).max() / np.abs(ours).max()
            if name == "ReLU" and dis > 1e-4:  # float32 peers
                raise SystemExit(f"{peer} disagrees with shapgov on ReLU: {dis:.2e}")
            line += f" | {peer} {t:6.2f}s ({t / t_ours:5.1f}x, gap {gap:.1e}, diff {dis:.1e})"
        print(line, flush=True)


def deeplift_error_per_activation(quick: bool) -> None:
    from shapgov.explainers.coalitions import shapley_from_values
    from shapgov.explainers.deeplift import deeplift_values
    from shapgov.explainers.kernels.mlp import mlp_coalition_margins
    from shapgov_plugins.torch_networks import TorchNetwork

    X, y = data(1500, 12, 2, np.float64)
    rows, bg = X[: 20 if quick else 100], X[1000:1050]
    print("\n2. DeepLIFT against exact Shapley values, 12 -> 32 -> 32 -> 1 (float64)")
    for name, act in ACTS.items():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(12, 32), act(), nn.Linear(32, 32), act(), nn.Linear(32, 1))
        network = TorchNetwork(train(net.double(), X, y)).network_
        v = mlp_coalition_margins(network, rows, bg, np.arange(12), 12, mean=True)[:, 0]
        exact = (
            shapley_from_values(v)[..., 0]
            if shapley_from_values(v).ndim == 3
            else shapley_from_values(v)
        )
        approx, _ = deeplift_values(network, rows, bg)
        err = np.abs(approx[:, :, 0] - exact.reshape(approx.shape[:2])).mean()
        print(
            f"   {name:9s} mean |DeepLIFT - exact| / mean |exact| = "
            f"{err / np.abs(exact).mean():.3f}"
        )


def exact_mode(quick: bool) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import shapgov

    print("\n3. Exact mode against Kernel's exact enumeration (same game)")
    Xd, yd = load_diabetes(return_X_y=True, as_frame=True)
    tutorial = make_pipeline(
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(5,), activation="logistic", max_iter=3000, random_state=0),
    ).fit(Xd, yd)
    X, y = data(1500, 12, 3, np.float64)
    cases = [
        ("tutorial MLP (10 features)", tutorial, Xd.iloc[: 50 if quick else 146], Xd.iloc[::3])
    ]
    for name in ("ReLU", "SELU", "GELU", "SiLU"):  # ReLU: the same network without exp/erf
        torch.manual_seed(0)
        act = ACTS[name]
        net = train(
            nn.Sequential(
                nn.Linear(12, 32), act(), nn.Linear(32, 32), act(), nn.Linear(32, 1)
            ).double(),
            X,
            y,
        )
        cases.append(
            (f"{name} network (12 features)", net, X[: 20 if quick else 100], X[1000:1050])
        )
    for label, model, rows, bg in cases:
        shapgov.explain(model, rows[:2], background=bg)
        deep, t_deep = timed(lambda m=model, r=rows, b=bg: shapgov.explain(m, r, background=b), 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kern, t_kern = timed(
                lambda m=model, r=rows, b=bg: shapgov.explain(m, r, background=b, opaque=True), 1
            )
        dis = np.abs(deep.values - kern.values).max()
        print(
            f"   {label}: Deep exact {len(rows) / t_deep:8,.0f} rows/s, Kernel exact "
            f"{len(rows) / t_kern:8,.0f} rows/s -> {t_kern / t_deep:5.1f}x (diff {dis:.1e})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--exact-only", action="store_true", help="part 3 alone")
    args = parser.parse_args()
    if not args.exact_only:
        deeplift_vs_peers(args.quick)
        deeplift_error_per_activation(args.quick)
    exact_mode(args.quick)


if __name__ == "__main__":
    main()
