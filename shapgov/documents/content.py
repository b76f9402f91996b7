"""The model document's content, read from the compliance report's context.

:func:`model_document` turns the context :func:`shapgov.sinks.compliance.build_context`
builds from a hash-checked artifact set (and the registry's verdict) into a
:class:`~shapgov.documents.blocks.ModelDocument`: nothing is computed again, every number
is the one the report shows, and every table and figure cites the file of the set it was
read from with the SHA-256 the manifest holds for it. The regulatory section map
(:mod:`shapgov.documents.regulatory`) comes last.
"""

from __future__ import annotations

import base64
from typing import Any

from shapgov.documents.blocks import (
    Bullets,
    Figure,
    Heading,
    Link,
    ModelDocument,
    Paragraph,
    Section,
    Source,
    Table,
)
from shapgov.documents.regulatory import regulatory_section
from shapgov.sinks.compliance import SECTIONS

_URI = "data:image/png;base64,"


class _Sources:
    """Sources of the set's files, with the manifest's SHA-256."""

    def __init__(self, artifacts: dict[str, str], manifest_sha256: str) -> None:
        self.artifacts = artifacts
        self.manifest_sha256 = manifest_sha256

    def __call__(self, *names: str, what: str = "") -> Source:
        """The first of ``names`` the set holds (else the manifest itself)."""
        for name in names:
            if name in self.artifacts:
                return Source(name, self.artifacts[name], what)
        return Source("manifest.json", self.manifest_sha256, what)


def _png(uri: str | None) -> bytes | None:
    if not uri or not uri.startswith(_URI):
        return None
    return base64.b64decode(uri[len(_URI) :])


def _figure(uri: str | None, caption: str, source: Source, alt: str = "") -> list[Figure]:
    png = _png(uri)
    return [] if png is None else [Figure(caption, png, source, alt or caption)]


def _kv(caption: str, pairs: list[tuple[str, Any]], source: Source) -> Table:
    rows = tuple((str(k), "–" if v is None else str(v)) for k, v in pairs)
    return Table(caption, ("Item", "Value"), rows, source, key_value=True)


def _table(caption: str, header: list[str], rows: list[list[Any]], source: Source) -> Table:
    body = tuple(tuple("–" if v is None else str(v) for v in r) for r in rows)
    return Table(caption, tuple(header), body, source)


def _absent(text: str) -> Paragraph:
    return Paragraph((text,), "warning")


def model_document(
    context: dict[str, Any], manifest: dict[str, Any], manifest_sha256: str, fields: dict[str, str]
) -> ModelDocument:
    """The document of the set behind ``context``.

    :param context: From :func:`shapgov.sinks.compliance.build_context` (with the
        approval state of the registered version).
    :param manifest: The set's manifest (its ``artifacts``: file name -> SHA-256).
    :param manifest_sha256: The manifest file's SHA-256.
    :param fields: The inline placeholders' values (:data:`shapgov.documents.INLINE`).
    """
    src = _Sources(dict(manifest.get("artifacts", {})), manifest_sha256)
    builders = {
        "model": _model,
        "data": _data,
        "additivity": _additivity,
        "impact": _impact,
        "summary": _summary,
        "predictions": _predictions,
        "agreement": _agreement,
        "over_time": _over_time,
        "reasons": _reasons,
        "fairness": _fairness,
        "challenger": _challenger,
        "approval": _approval,
        "provenance": _provenance,
    }
    titles = dict(SECTIONS)
    sections = []
    for section_id, title in context["sections"]:
        blocks = builders[section_id](context, src)
        sections.append(Section(section_id, title, tuple(blocks)))
    present = {s.id for s in sections}
    sections.append(regulatory_section(present, titles))
    return ModelDocument(dict(fields), _executive(context, present), tuple(sections))


def _executive(context: dict[str, Any], present: set[str]) -> Section:
    items = []
    for line in context["executive"]:
        parts: list[str | Link] = [f"{line['label']}: {line['text']}"]
        if line["section"] in present:
            parts += [
                " (see ",
                Link(dict(SECTIONS).get(line["section"], line["section"]), line["section"]),
                ")",
            ]
        items.append(Paragraph(tuple(parts), "warning" if line["flag"] == "problem" else "body"))
    return Section("executive", "Executive summary", (Bullets(tuple(items)),))


def _model(c: dict[str, Any], src: _Sources) -> list[Any]:
    m = c["model"]
    game = m.get("game") or {}
    pairs = [
        ("Model class", m["model_class"]),
        ("Task", m["task"]),
        ("Explained space", f"{m['output_space']} (link {m['link']})"),
    ]
    if m.get("classes"):
        pairs.append(("Classes", ", ".join(m["classes"])))
    pairs.append(("Explained game", game.get("description") or "not recorded"))
    if game.get("feature_perturbation"):
        pairs.append(("feature_perturbation", game["feature_perturbation"]))
    if game.get("background_sha256"):
        pairs.append(
            (
                "Background",
                f"{game.get('n_background')} rows ({game.get('background_source')}), "
                f"SHA-256 {game['background_sha256']}",
            )
        )
    if m.get("sampling"):
        s = m["sampling"]
        pairs.append(
            ("Sampled values", f"standard error {s['mean']} on average, {s['max']} at most")
        )
    if game.get("fallback_reason"):
        pairs.append(("Explained as a whole because", game["fallback_reason"]))
    blocks: list[Any] = [_kv("Model and game", pairs, src("values.parquet", what="its metadata"))]
    blocks.append(
        _table(
            "Modeling vertices and their explainers",
            ["Vertex", "Estimator", "Explainer", "Matrix row", "Support", "Values"],
            [
                [
                    v["name"],
                    v["estimator_class"],
                    v["explainer"],
                    v["matrix_row"],
                    v["status"],
                    v["method"],
                ]
                for v in m["vertices"]
            ],
            src("vertices.json"),
        )
    )
    plugins = m.get("plugins") or []
    if plugins:
        blocks.append(
            _table(
                "Plugins that took part",
                ["Plugin", "Distribution", "Version"],
                [[p.get("name"), p.get("distribution"), p.get("version")] for p in plugins],
                src("values.parquet", what="its metadata"),
            )
        )
    return blocks


def _data(c: dict[str, Any], src: _Sources) -> list[Any]:
    d = c["data"]
    blocks: list[Any] = [
        Paragraph(
            (
                f"{d['rows']} rows, {len(d['columns'])} original columns. SHA-256 of the "
                f"explained data: {d['data_sha256']}.",
            )
        )
    ]
    if d["columns"]:
        blocks.append(
            _table(
                "Columns explained",
                ["Column", "Type", "Missing", "Values"],
                [[x["name"], x["dtype"], x["missing"], x["summary"]] for x in d["columns"]],
                src("values.parquet"),
            )
        )
    blocks.append(
        _table(
            "Files of the artifact set and their SHA-256",
            ["File", "SHA-256"],
            [[name, digest] for name, digest in d["artifacts"]],
            Source("manifest.json", d["manifest_sha256"]),
        )
    )
    return blocks


def _additivity(c: dict[str, Any], src: _Sources) -> list[Any]:
    a = c["additivity"]
    r = a["report"]
    pairs = [
        ("Status", r.status),
        ("Pass tolerance (normalized)", r.pass_tolerance),
        ("Fail threshold (normalized)", r.threshold),
        (
            "Max / mean normalized mismatch",
            f"{r.max_normalized_mismatch:.3g} / {r.mean_normalized_mismatch:.3g}",
        ),
        ("Max absolute mismatch", f"{r.max_abs_mismatch:.3g}"),
        (
            "Rows above tolerance / threshold",
            f"{r.n_mismatched} / {r.n_over_threshold} of {r.n_rows}",
        ),
        ("Normalization", r.normalization),
    ]
    pairs += [(f"Applied: {k}", v) for k, v in a["applied"].items()]
    pairs += [(f"Normalized mismatch, {k}", v) for k, v in a["quantiles"].items()]
    blocks: list[Any] = [
        Paragraph(
            (
                "Each prediction is rebuilt as cap(link^-1(base + sum of SHAP values + offset) "
                f"x exposure) and compared with the model's own output. {a['describe']}",
            )
        ),
        _kv("Additivity check", pairs, src("additivity.json")),
    ]
    blocks += _figure(
        a.get("figure"),
        "Distribution of the normalized mismatch per row (log scale), with the pass tolerance "
        "and the fail threshold",
        src("additivity.parquet"),
    )
    if r.status == "fail":
        blocks.append(_absent("The additivity check failed: the SHAP values were withheld."))
    return blocks


def _impact(c: dict[str, Any], src: _Sources) -> list[Any]:
    i = c.get("impact")
    if not i:
        return [_absent("No Feature Impact: the SHAP values were withheld.")]
    blocks: list[Any] = [
        Paragraph(
            (
                "SHAP impact is the mean |SHAP value| over the explained rows; permutation "
                "impact is how much the metric worsens when a feature is shuffled; both "
                "normalized so the top feature is 100. Rank agreement (Spearman): "
                f"{i['rank_agreement']}.",
            )
        )
    ]
    blocks += _figure(
        i.get("figure"),
        "SHAP impact next to permutation impact",
        src("feature_impact.png", "feature_impact.json"),
    )
    blocks.append(
        _table(
            "Feature Impact",
            [
                "Feature",
                "SHAP impact",
                "SHAP rank",
                "Permutation impact",
                "± spread",
                "Permutation rank",
            ],
            [
                [r["feature"], r["shap"], r["shap_rank"], r["perm"], r["perm_std"], r["perm_rank"]]
                for r in i["rows"]
            ],
            src("feature_impact.json"),
        )
    )
    return blocks


def _summary(c: dict[str, Any], src: _Sources) -> list[Any]:
    s = c.get("summary")
    if not s:
        return [_absent("No summary: the SHAP values were withheld.")]
    values = src("values.parquet", what="figure drawn from the values")
    blocks: list[Any] = []
    for plot in s["summaries"]:
        blocks += _figure(
            plot["figure"],
            f"SHAP values per feature ({plot['label']}); colour is the feature's value",
            values,
        )
    if s.get("sample"):
        blocks.append(
            Paragraph(
                (
                    f"The plots draw a seeded sample of {s['sample']['points']} of the "
                    f"{s['sample']['rows']} explained rows.",
                ),
                "note",
            )
        )
    if s.get("dependence"):
        blocks.append(Heading("Dependence of the top features", 2))
        for d in s["dependence"]:
            blocks += _figure(d["figure"], f"{d['feature']}: value against SHAP value", values)
    return blocks


def _predictions(c: dict[str, Any], src: _Sources) -> list[Any]:
    p = c.get("predictions")
    if not p:
        return [_absent("No Prediction Explanations: the SHAP values were withheld.")]
    values = src("values.parquet")
    blocks: list[Any] = [
        Paragraph(
            (f"A seeded sample of explained rows; the top {p['k']} features of each by |SHAP|.",)
        )
    ]
    for r in p["rows"]:
        blocks.append(Heading(f"Row {r['row']} ({r['why']}; {r['output']})", 3))
        line = (
            f"Explained output: base {r['base']} + sum of SHAP {r['shap_sum']} = {r['explained']}"
        )
        if p.get("prediction_name"):
            line += f" {p['unit']} = {p['prediction_name']} {r['linked']}"
        if r.get("prediction") is not None:
            line += f"; model prediction {r['prediction']}"
        blocks.append(Paragraph((line + ".",)))
        rows = [
            [f["name"], f["value"], f["shap"], f["strength"], f["symbol"]] for f in r["features"]
        ]
        rows.append(["all other features", "", r["rest"], "", ""])
        blocks.append(
            _table(
                f"Prediction Explanation of row {r['row']}",
                ["Feature", "Value", "SHAP", "XEMP strength", "XEMP"],
                rows,
                values,
            )
        )
        blocks += _figure(
            r["figure"],
            f"Waterfall of row {r['row']}: from the base value to the row's output",
            values,
        )
    return blocks


def _agreement(c: dict[str, Any], src: _Sources) -> list[Any]:
    a = c.get("agreement")
    if not a:
        return [_absent("No XEMP comparison was logged with this set.")]
    source = src("comparison.json")
    blocks: list[Any] = [
        Paragraph(
            (
                f"{a['n_flagged']} of {a['n_rows']} {a['compared']} ({a['share']}) flagged for "
                f"review. Mean top-{a['k']} overlap {a['mean_overlap']}, mean Spearman "
                f"correlation of |SHAP| and |XEMP strength| {a['mean_spearman']}. A flag marks "
                "a row to review, not a failed check.",
            )
        ),
        _table(
            "Global rank agreement",
            ["Ranking", "against", "Spearman", "Kendall"],
            [[g["first"], g["second"], g["spearman"], g["kendall"]] for g in a["global"]],
            source,
        ),
    ]
    if a["flagged"]:
        blocks.append(
            _table(
                "Rows flagged for review",
                ["Row", "Overlap", "Spearman", "Top SHAP", "Top XEMP", "Reason"],
                [
                    [
                        f["row"],
                        f["overlap"],
                        f["spearman"],
                        f["top_shap"],
                        f["top_xemp"],
                        f["reason"],
                    ]
                    for f in a["flagged"]
                ],
                source,
            )
        )
    return blocks


def _over_time(c: dict[str, Any], src: _Sources) -> list[Any]:
    o = c["over_time"]
    source = src("over_time.json")
    flagged = o.get("flagged") or []
    blocks: list[Any] = [
        Paragraph(
            (
                "Every row was explained once, in one game against one background fixed across "
                f"windows, then aggregated by window; each window is compared with the reference "
                f"window {o['reference']} and the previous one. Largest impact drift against the "
                f"reference: {o['max_impact_drift']}.",
            )
        ),
        Paragraph(
            (
                f"Drift flagged in windows: {', '.join(map(str, flagged))}."
                if flagged
                else "No window flagged.",
            ),
            "warning" if flagged else "body",
        ),
    ]
    blocks += _figure(
        o.get("figure"),
        "Impact of the top players per window (top player of each window = 100)",
        src("over_time.png", "over_time.json"),
    )
    header = [
        "Window",
        "Rows",
        "Additivity",
        *o["players"],
        "ρ vs ref.",
        "L1 vs ref.",
        "Holm p vs ref.",
        "Flag",
    ]
    rows = []
    for r in o["rows"]:
        ref = r.get("reference") or {}
        rows.append(
            [
                r["window"],
                r["rows"],
                r["status"],
                *r["impacts"],
                ref.get("spearman", "reference"),
                ref.get("l1", ""),
                ref.get("p", ""),
                "flagged" if r.get("flagged") else "",
            ]
        )
    blocks.append(
        _table("Feature Impact per window and drift against the reference", header, rows, source)
    )
    blocks.append(_table("Drift rules", ["Rule", "Value"], [[n, v] for n, v in o["rules"]], source))
    return blocks


def _reasons(c: dict[str, Any], src: _Sources) -> list[Any]:
    r = c["reasons"]
    cat = r["catalogue"]
    blocks: list[Any] = [
        Paragraph(
            (
                "A declined applicant is owed a statement of specific reasons (ECOA, Regulation "
                "B, 12 CFR 1002.9(b)(2)); each declined row's reasons are the catalogue entries "
                "pushing its score furthest toward decline, each entry one player of a game "
                f"against the reference population (game SHA-256 {r['game_sha256']}; additivity "
                f"{r['additivity']}).",
            )
        ),
        _table(
            f"Reason catalogue {cat['name']} version {cat['version']}",
            ["Code", "Statement", "Inputs", "Adverse when"],
            [[x["code"], x["statement"], x["inputs"], x["adverse"]] for x in cat["reasons"]],
            src("reason_catalogue.json"),
        ),
        _kv(
            "Decision rule and reference population",
            [
                *r["decision"],
                (
                    "Reference population",
                    f"{r['reference']['population']}: {r['reference']['how']}",
                ),
                (
                    "Reference rows",
                    f"{r['reference']['rows']} of {r['reference']['candidates']} candidates",
                ),
            ],
            src("reasons.json"),
        ),
        Paragraph((f"{r['declined']} of {r['rows']} explained rows declined.",)),
        _table(
            "How often each reason is given",
            ["Code", "Statement", "First", "Any", "Share", "Not true of the row"],
            [
                [f["code"], f["statement"], f["first"], f["any"], f["share"], f["contradicted"]]
                for f in r["frequencies"]
            ],
            src("reasons.parquet"),
        ),
    ]
    st = r["stability"]
    if st.get("measured"):
        blocks.append(
            _kv(
                "Stability of the reasons across resamples of the reference population",
                [
                    ("Resamples", f"{st['resamples']} {st['method']}, seed {st['random_state']}"),
                    ("Mean share of a row's reasons kept", st["mean"]),
                    ("Lowest share kept", st["min"]),
                    ("First reason unchanged", st["first"]),
                ],
                src("reason_stability.parquet", "reasons.json"),
            )
        )
    else:
        blocks.append(_absent("Stability was not measured for this set."))
    if r.get("notice"):
        blocks.append(Heading(f"Sample notice (row {r['notice']['row']})", 3))
        blocks.append(Paragraph((r["notice"]["text"],), "code"))
    return blocks


def _fairness(c: dict[str, Any], src: _Sources) -> list[Any]:
    f = c["fairness"]
    rules = f["rules"]
    blocks: list[Any] = [
        Paragraph(
            (
                "Protected attributes are not model inputs; they were given beside the "
                f"explained rows (protected table SHA-256 {f['protected_sha256']}, not stored). "
                f"{f['summary'][:1].upper()}{f['summary'][1:]}.",
            ),
            "warning" if f["flagged"] else "body",
        ),
        Paragraph(
            (
                f"The flag: adverse impact ratio below {rules.get('air_threshold')} and the "
                f"one-sided test of AIR >= 1 rejected at {rules.get('alpha')} after Holm's "
                f"correction, in groups of at least {rules.get('min_group_size')} rows; "
                f"AIR intervals: {rules.get('air_interval')}.",
            ),
            "note",
        ),
    ]
    header = ["Attribute", "Group", "Rows", "Approval rate", "AIR", "AIR interval", "Holm p",
              "SMD", "Gap", "Flag"]  # fmt: skip
    rows = [
        [g["attribute"], g["group"] + (" (reference)" if g["is_reference"] else ""), g["n"],
         g["approval_rate"], g["air"], g["interval"], g["p"], g["smd"], g["gap"],
         "flagged" if g["flagged"] else ("small group" if g["small"] else "")]
        for g in f["groups"]
    ]  # fmt: skip
    blocks.append(_table("Approval rates and adverse impact ratios", header, rows,
                         src("fairness_groups.parquet")))  # fmt: skip
    if f["outcomes"]:
        blocks.append(
            _table(
                "Error rates by group (differences against the reference, Newcombe intervals)",
                ["Attribute", "Group", "FPR", "FNR", "FPR difference", "FNR difference",
                 "Observed rate"],
                [[g["attribute"], g["group"], g["fpr"], g["fnr"], g["fpr_diff"], g["fnr_diff"],
                  g["observed"]] for g in f["groups"]],
                src("fairness_groups.parquet"),
            )
        )  # fmt: skip
    for carried in f["carried"]:
        blocks.append(
            _table(
                f"What carries the gap of {carried['group']} ({carried['attribute']}): mean "
                "SHAP differences, summing exactly to the gap",
                ["Input", "Mean SHAP difference", "Share of the gap"],
                [[r["player"], r["contribution"], r["share"]] for r in carried["rows"]],
                src("fairness_gaps.parquet"),
            )
        )
    if f.get("windows"):
        blocks += _figure(
            f.get("windows_figure"),
            "Adverse impact ratio per window, with its interval (dashed: the threshold)",
            src("fairness_over_time.png", "fairness_windows.parquet"),
        )
        blocks.append(
            _table(
                "Adverse impact ratios per window",
                ["Window", "Attribute", "Group", "Rows", "Approval rate", "AIR", "AIR interval",
                 "Holm p", "Flag"],
                [[w["window"], w["attribute"], w["group"], w["n"], w["approval_rate"], w["air"],
                  w["interval"], w["p"], "flagged" if w["flagged"] else ""]
                 for w in f["windows"]],
                src("fairness_windows.parquet"),
            )
        )  # fmt: skip
    blocks.append(
        _table(
            "Proxy screen (flagged inputs first, by share of Feature Impact)",
            ["Attribute", "Input", "Proxy score", "SHAP column's score", "Group",
             "Impact share", "Flag"],
            [[p["attribute"], p["input"], p["score"], p["shap"], p["group"],
              p["impact"], "flagged" if p["flagged"] else ""] for p in f["proxies"]],
            src("fairness_proxies.parquet"),
        )
    )  # fmt: skip
    return blocks


def _challenger(c: dict[str, Any], src: _Sources) -> list[Any]:
    cc = c["challenger"]
    source = Source(
        f"shapgov-comparison/v{cc['champion']['version']}/manifest.json",
        cc["manifest_sha256"],
        "the comparison logged on this version's run",
    )
    blocks: list[Any] = [
        Paragraph(
            (
                f"This version (v{cc['challenger']['version']}) against the champion "
                f"v{cc['champion']['version']}, both explained on the same {cc['rows']} rows "
                f"against the same background, in {cc['space']}.",
            )
        ),
        _kv(
            "Agreement with the champion",
            [
                ("Feature Impact rank correlation", cc["rank_correlation"]),
                (f"Top-{cc['k']} overlap (impact / mean per row)",
                 f"{cc['top_k_overlap']} / {cc['row_overlap']}"),
                ("Sign agreement (mean per row)", cc["sign_agreement"]),
                ("Score PSI / KS (p)", f"{cc['psi']} / {cc['ks']} ({cc['ks_p']})"),
                ("Decisions", cc["decisions"] or "no decision rule given"),
            ],
            source,
        ),
    ]  # fmt: skip
    if cc["metrics"]:
        blocks.append(
            _table(
                "Performance against the champion (paired bootstrap of the difference)",
                ["Metric", "Champion", "Challenger", "Difference", "Interval", "Gain"],
                [[m["metric"], m["champion"], m["challenger"], m["difference"], m["interval"],
                  m["gain"]] for m in cc["metrics"]],
                source,
            )
        )  # fmt: skip
    if cc.get("windows"):
        blocks.append(
            _table(
                "Champion and challenger per window",
                ["Window", "Rows", "Score PSI", "KS", "Impact rank correlation", "Metric"],
                [[w["window"], w["rows"], w["psi"], w["ks"], w["rank_correlation"], w["metric"]]
                 for w in cc["windows"]],
                source,
            )
        )  # fmt: skip
    blocks.append(
        _table(
            "Inputs whose impact moved most",
            ["Input", "Share of impact, champion", "Challenger", "Rank"],
            [[r["input"], r["champion"], r["challenger"], r["ranks"]] for r in cc["moved"]],
            source,
        )
    )
    return blocks


def _approval(c: dict[str, Any], src: _Sources) -> list[Any]:
    a = c.get("approval")
    if not a:
        return [
            _absent(
                "Not judged: this document was built for a run, not a registered model version."
            )
        ]
    registry = Source(
        f"registry tags of {a['name']} version {a['version']}", None, "the signed verdict"
    )
    blocks: list[Any] = [
        _kv(
            "Verdict",
            [
                ("Verdict", a["verdict"]),
                (
                    "Judged by",
                    a["approver"]
                    + (
                        " (declared, not authenticated)"
                        if a.get("authenticated") == "false"
                        else ""
                    ),
                ),
                ("Checked at", a["time"]),
                ("Signature", f"{a['signature']['status']}: {a['signature']['text']}"),
                ("Optional rules applied", a["rules"]),
                ("By shapgov", a["by_version"]),
            ],
            registry,
        ),
        Paragraph(("What the approval checks:",)),
        Bullets(tuple(Paragraph((str(x),)) for x in a["checks"])),
    ]
    if a.get("reasons"):
        blocks.append(Paragraph(("Reasons recorded with the verdict: " + "; ".join(a["reasons"]),)))
    review = a.get("review") or {}
    if review.get("in_force"):
        blocks.append(Heading("Review (separation of duties)", 2))
        blocks.append(
            Paragraph(
                (
                    f"Set logged by {review.get('developer') or 'unknown'}. Sign-offs: "
                    f"{', '.join(review['signoffs']) if review.get('signoffs') else 'none'}."
                    + (
                        ""
                        if review.get("authenticated")
                        else " Identities were declared, not authenticated."
                    ),
                )
            )
        )
        if review.get("findings"):
            ledger = Source("the approval ledger", None, "hash-chained, signed entries")
            blocks.append(
                _table(
                    "Findings",
                    ["Finding", "Severity", "Title", "Owner", "Due", "Status"],
                    [
                        [f["id"], f["severity"], f["title"], f["owner"], f["due"], f["status"]]
                        for f in review["findings"]
                    ],
                    ledger,
                )
            )
        if review.get("problems"):
            blocks.append(
                _absent("The review ledger does not verify: " + "; ".join(review["problems"]))
            )
    return blocks


def _provenance(c: dict[str, Any], src: _Sources) -> list[Any]:
    p = c["provenance"]
    return [
        _kv("Identifiers", list(p["ids"].items()), src("manifest.json")),
        _table(
            "Libraries",
            ["Library", "When explained", "When documented"],
            [[x["name"], x["logged"], x["now"]] for x in p["libraries"]],
            src("manifest.json", what="its environment"),
        ),
    ]
