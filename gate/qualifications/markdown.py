"""A qualification's report as Markdown to paste into a model card, in the reader's language (pure).

It formats gate.qualifications.report's structure and nothing else: every figure is the API's, rounded for print
with Babel in the chosen locale, and each section names the run that measured it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_decimal

from gate.qualifications import words

Translate = Callable[[str], str]
MARKS = {"pass": "✅", "fail": "❌", "not_comparable": "⚠️", "run_failed": "⛔"}
THREE_WAY_ROWS = ("cosine_mean", "top1_match_rate", "top5_overlap_mean", "ppl_rel_diff_mean", "ppl_rel_diff_max")
BACKTICKS = re.compile(r"`{3,}")


class Writer:
    """Lines of Markdown in one locale: numbers, table rows and links formatted one way throughout."""

    def __init__(self, _: Translate, locale: str, base_url: str) -> None:
        self._, self.locale, self.base_url = _, locale, base_url.rstrip("/")
        self.lines: list[str] = []

    def num(self, value: float | int | None, digits: int = 4) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def pct(self, share: float | None, digits: int = 2) -> str:
        return "—" if share is None else f"{self.num(share * 100, digits)}%"

    def run(self, run_id: int | None) -> str:
        _ = self._
        return "—" if run_id is None else "[" + _("run #%(id)s") % {"id": run_id} + f"]({self.base_url}/runs/{run_id})"

    def verdict(self, value: str | None) -> str:
        _ = self._
        named = {
            "pass": _("pass"),
            "fail": _("fail"),
            "not_comparable": _("not comparable"),
            "run_failed": _("run failed"),
            None: _("measured, not gated"),
        }
        return f"{MARKS.get(value or '', '')} {named.get(value, value)}".strip()

    def status(self, value: str) -> str:
        return words.status(value, self._)

    def table(self, head: list[str], rows: list[list[str]]) -> None:
        self.lines += ["", row(head), "|" + "---|" * len(head), *(row(r) for r in rows), ""]

    def heading(self, text: str, level: int = 2) -> None:
        self.lines += ["", "#" * level + " " + text, ""]

    def source(self, run_id: int | None) -> None:
        _ = self._
        self.lines.append(_("Measured by %(run)s.") % {"run": self.run(run_id)})


def cell(value: Any) -> str:
    """A table cell: pipes escaped and line breaks folded, so a value never breaks its row."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def fenced(text: str, language: str = "") -> list[str]:
    """A code block whose fence is longer than any run of backticks inside (a model's answer may hold ```)."""
    longest = max((len(m) for m in BACKTICKS.findall(text)), default=2)
    fence = "`" * max(3, longest + 1)
    return [fence + language, text, fence]


def _overview(w: Writer, report: dict[str, Any]) -> None:
    _, q = w._, report["qualification"]
    w.lines.append("# " + _("Qualification #%(id)s: %(model)s") % {"id": q["id"], "model": f"`{q['model']}`"})
    created = format_datetime(datetime.fromisoformat(q["created_at"]), "medium", locale=w.locale)
    said = w.verdict(q["verdict"]) if q["verdict"] else w.status(q["status"])
    w.lines += ["", "**" + _("Verdict: %(verdict)s") % {"verdict": said} + "**", ""]
    facts = [
        (_("Backend"), f"`{q['backend']}`"),
        (_("Plan"), f"`{q['plan']}`"),
        (_("Baseline"), f"`{q['baseline'] or '—'}`"),
        (_("Created"), created),
    ]
    w.lines.append(" · ".join(f"{label}: {value}" for label, value in facts))
    if q["model_fingerprint"]:
        w.lines += ["", _("Model fingerprint") + f": `{q['model_fingerprint']}`"]
    if q["causes"]:
        w.lines += ["", *(f"- {words.cause(c, report['checks'], _)}" for c in q["causes"])]
    w.table(
        [_("Check"), _("Run"), _("Status"), _("Gated"), _("Verdict")],
        [
            [
                c["name"],
                w.run(c["run_id"]),
                w.status(c["status"]),
                _("yes") if c["gated"] else _("no"),
                w.verdict(c["verdict"]) if c["status"] == "succeeded" else waits(w, c),
            ]
            for c in report["checks"]
        ],
    )


def waits(w: Writer, check: dict[str, Any]) -> str:
    """What a check that has not succeeded says instead of a verdict."""
    if check["waiting"]:
        return words.waiting(check, w._)
    return check["failure_reason"] or "—"


def _environment(w: Writer, env: dict[str, Any]) -> None:
    _ = w._
    w.heading(_("Test environment"))
    versions = env["versions"]
    frameworks = ", ".join(f"{name} {version}" for name, version in versions.items())
    device = env["device"] or "—"
    if env["device_count"]:
        device += f" \N{MULTIPLICATION SIGN} {env['device_count']}"
    rows = [
        [_("Device"), device],
        [_("Device memory"), env["device_memory"] or "—"],
        [_("Driver"), " / ".join(x for x in (env["driver"], env["cann"] and f"CANN {env['cann']}") if x) or "—"],
        [
            _("CPU"),
            (env["cpu"] or "—") + (" " + _("(%(n)s cores)") % {"n": env["cpu_cores"]} if env["cpu_cores"] else ""),
        ],
        [_("Memory"), f"{w.num(env['memory_gib'], 1)} GiB" if env["memory_gib"] is not None else "—"],
        [_("Frameworks"), frameworks or "—"],
        [_("Precision"), env["precision"]],
        [_("Mode"), _("eager (enforce_eager)") if env["mode"] == "eager" else _("graph")],
    ]
    w.table([_("Item"), _("Configuration")], rows)
    w.source(env["run_id"])


def _samples(w: Writer, samples: dict[str, Any]) -> None:
    _ = w._
    w.heading(_("Sample outputs"))
    sampling = samples.get("sampling") or {}
    w.lines.append(", ".join(f"{k}={v}" for k, v in sampling.items() if v is not None))
    for output in samples["outputs"]:
        w.lines += ["", "**" + _("User") + f":** {output['prompt']}", "", "**" + _("Model") + ":**", ""]
        w.lines += fenced(output.get("answer") or "")
        if output.get("reasoning"):
            w.lines += ["", "<details><summary>" + _("Reasoning") + "</summary>", "", *fenced(output["reasoning"])]
            w.lines += ["", "</details>"]
    w.lines.append("")
    w.source(samples["run_id"])


def _alignment(w: Writer, a: dict[str, Any]) -> None:
    _ = w._
    w.heading(_("Logit alignment"))
    w.lines.append(f"{w.verdict(a['outcome'])}: {a.get('comparison') or ''}")
    w.lines += [f"- {reason}" for reason in a.get("reasons") or []]
    if a.get("next_tokens"):
        w.table(
            [
                _("Input text"),
                _("Cosine similarity"),
                _("Relative error"),
                _("Top-1 match"),
                _("Candidate"),
                _("Reference"),
            ],
            [
                [t["text"], w.num(t["cosine"], 6), w.pct(t["rel_error"]), "✅" if t["match"] else "❌", t["candidate"],
                 t["reference"]]
                for t in a["next_tokens"]
            ],
        )  # fmt: skip
    if a.get("perplexity"):
        rows = [
            [p["text"], w.num(p["candidate"]), w.num(p["reference"]), w.pct(p["rel_diff"])] for p in a["perplexity"]
        ]
        for label, summary in ((_("Mean"), a.get("perplexity_mean")), (_("Median"), a.get("perplexity_median"))):
            if summary:
                rows.append(
                    [label, w.num(summary["candidate"]), w.num(summary["reference"]), w.pct(summary["rel_diff"])]
                )
        w.table([_("Test text"), _("Candidate PPL"), _("Reference PPL"), _("Difference")], rows)
    if a.get("three_way"):
        names = list(a["three_way"])
        labels = {
            "cosine_mean": _("Logit cosine similarity"),
            "top1_match_rate": _("Top-1 token match rate"),
            "top5_overlap_mean": _("Top-5 token overlap"),
            "ppl_rel_diff_mean": _("Mean perplexity difference"),
            "ppl_rel_diff_max": _("Max perplexity difference"),
        }
        rows = []
        for key in THREE_WAY_ROWS:
            shown = [a["three_way"][n].get(key) for n in names]
            fmt = (lambda v: w.num(v, 6)) if key == "cosine_mean" else w.pct
            rows.append([labels[key], *(fmt(v) for v in shown)])
        w.table([_("Metric"), *names], rows)
    w.source(a["run_id"])


def _accuracy(w: Writer, acc: dict[str, Any], official: list[dict[str, Any]]) -> None:
    _ = w._
    w.heading(_("Accuracy gate"))
    rows = []
    for v in acc["verdicts"]:
        ci = v.get("delta_ci95_pp")
        rows.append(
            [
                v["task"],
                v["metric"],
                w.num(v["candidate"]),
                w.num(v["baseline"]),
                f"{'+' if v['delta_pp'] >= 0 else ''}{w.num(v['delta_pp'], 2)}",
                f"{'±' if v['two_sided'] else '-'}{w.num(v['tolerance_pp'], 1)}",
                f"[{w.num(ci[0], 2)}, {w.num(ci[1], 2)}]" if ci else "—",
                w.num(v.get("candidate_stderr_pp"), 2),
                w.verdict(v["outcome"]),
            ]
        )
    if rows:
        w.table(
            [_("Task"), _("Metric"), _("Score"), _("Baseline"), _("Delta (pp)"), _("Gate (pp)"), _("95% interval (pp)"),
             _("SE (pp)"), _("Verdict")],
            rows,
        )  # fmt: skip
        for v in acc["verdicts"]:
            w.lines += [f"- {v['task']}: {reason}" for reason in v.get("reasons") or []]
    judged = {v["run_id"] for v in acc["verdicts"]}
    for b in acc["benchmarks"]:  # a benchmark whose run judged no task: why
        if b["run_id"] not in judged and b["verdict_reason"]:
            named = f"{b['check']}: " if len(acc["benchmarks"]) > 1 else ""
            w.lines.append(f"{named}{w.verdict(b['verdict'])}: {b['verdict_reason']}")
    w.lines.append(_("Measured by %(run)s.") % {"run": ", ".join(w.run(b["run_id"]) for b in acc["benchmarks"])})
    if official:
        w.heading(_("Official baselines"), 3)
        w.table(
            [_("Benchmark"), _("Task"), _("Metric"), _("Score"), _("Source")],
            [[b["benchmark"], b["task"], b["metric"], w.num(b["score"], 3), b["source"]] for b in official],
        )


def _serving(w: Writer, s: dict[str, Any]) -> None:
    _ = w._
    w.heading(_("Serving throughput"))
    w.lines.append(
        f"{w.verdict(s['outcome'])} · vLLM {s.get('vllm_version') or '?'} · "
        + _("profile")
        + f" `{s['spec']['profile']}`"
    )
    w.lines += [f"- {reason}" for reason in s.get("reasons") or []]
    w.table(
        [_("Concurrency"), _("Input / output tokens"), _("Output throughput (tok/s)"),
         _("Per-request decode (tok/s)"), _("Mean latency (s/request)"), _("TPOT (ms/token)"), _("TTFT (ms)")],
        [
            [str(r["concurrency"]), f"{w.num(r['input_len'], 0)} / {w.num(r['output_len'], 0)}",
             w.num(r["output_throughput"], 2), w.num(r["decode_rate"], 2), w.num(r["latency_s"], 3),
             w.num(r["tpot_ms"], 2), w.num(r["ttft_ms"], 2)]
            for r in s["levels"]
        ],
    )  # fmt: skip
    w.source(s["run_id"])


def _model_config(w: Writer, m: dict[str, Any]) -> None:
    _ = w._
    w.heading(_("Model configuration"))
    if m.get("architectures"):
        w.lines.append(", ".join(m["architectures"]))
    w.table([_("Parameter"), _("Value")], [[k, "—" if v is None else str(v)] for k, v in m["config"].items()])
    if m["generation_config"]:
        w.heading("generation_config.json", 3)
        w.table([_("Parameter"), _("Value")], [[k, str(v)] for k, v in m["generation_config"].items()])
    w.source(m["run_id"])


def _memory(w: Writer, m: dict[str, Any]) -> None:
    _ = w._
    w.heading(_("Measured memory requirements"))

    def gib(v: float | None) -> str:
        return f"{w.num(v, 2)} GiB" if v is not None else "—"

    def secs(v: float | None) -> str:
        return f"{w.num(v, 2)} s" if v is not None else "—"

    w.table(
        [_("Item"), _("Measured")],
        [
            [_("Model weights"), gib(m["model_memory_gib"])],
            [_("KV cache available"), gib(m["kv_cache_gib"])
             + (" " + _("(%(n)s tokens)") % {"n": w.num(m["kv_cache_tokens"], 0)} if m["kv_cache_tokens"] else "")],
            [_("Model load time"), secs(m["model_load_s"])],
            [_("Engine initialisation"), secs(m["engine_init_s"])],
            [_("Device memory"), m["device_memory"] or "—"],
        ],
    )  # fmt: skip
    w.source(m["run_id"])


def _commands(w: Writer, commands: list[dict[str, Any]]) -> None:
    w.heading(w._("Commands to reproduce"))
    for c in commands:
        w.lines += ["", f"**{c['check']}** ({w.run(c['run_id'])})", ""]
        for command in c["commands"]:
            w.lines += fenced(command, "sh")


def render(report: dict[str, Any], _: Translate, locale: str, base_url: str = "") -> str:
    """The report as Markdown: the card's sections in its order, those with no measurement left out."""
    w = Writer(_, locale, base_url)
    _overview(w, report)
    if report["environment"]:
        _environment(w, report["environment"])
    if report["samples"]:
        _samples(w, report["samples"])
    if report["alignment"]:
        _alignment(w, report["alignment"])
    if report["accuracy"]:
        _accuracy(w, report["accuracy"], report["official_baselines"])
    if report["serving"]:
        _serving(w, report["serving"])
    if report["model_config"]:
        _model_config(w, report["model_config"])
    if report["memory"]:
        _memory(w, report["memory"])
    if report["commands"]:
        _commands(w, report["commands"])
    return "\n".join(w.lines).strip() + "\n"
