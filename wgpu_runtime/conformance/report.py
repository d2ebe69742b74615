"""A conformance run as a terminal table (rich), Markdown or HTML -- the same content."""
from __future__ import annotations

import html
import math
import os
from pathlib import Path

from ..errors import WgpuRuntimeError
from .results import AdapterResult, Run

MAX_LISTED = 20      # failures listed per adapter (the JSON has them all)


def _ulps(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "∞"
    return f"{x:.3g}"


def worst_op(a: AdapterResult) -> str:
    c = a.worst_case()
    if c is None:
        return "-"
    return f"{_ulps(c.ulps)} / {_ulps(c.bound)} ULP ({c.op} #{c.index})"


def worst_model(a: AdapterResult) -> str:
    m = a.worst_model()
    if m is None:
        return "-"
    w = m.worst
    name = Path(m.model).name
    if m.error or w is None:
        return f"error ({name})"
    return f"{_ulps(w.ulps)} / {_ulps(w.bound)} ULP ({name})"


def summary_rows(run: Run) -> list[list[str]]:
    rows = []
    for a in run.adapters:
        if a.error:
            rows.append([a.label, "FAIL", "-", "-", "-", "-", a.error])
            continue
        rows.append([a.label, "pass" if a.passed else "FAIL", f"{a.ops_passed}/{len(a.cases)}",
                     f"{a.models_passed}/{len(a.models)}", worst_op(a), worst_model(a), f"{a.seconds:.0f} s"])
    return rows


HEADER = ["adapter", "result", "ops passed", "models passed", "worst op (error / bound)",
          "worst model (error / bound)", "time"]


def detail_lines(a: AdapterResult) -> list[str]:
    """Plain-text findings for one adapter: failing cases, then each model's outcome."""
    lines = []
    failures = [c for c in a.cases if not c.passed]
    for c in failures[:MAX_LISTED]:
        lines.append(f"op {c.op} case {c.index} ({c.note or 'no note'}): {c.message}")
    if len(failures) > MAX_LISTED:
        lines.append(f"... and {len(failures) - MAX_LISTED} more failing cases (see --json)")
    for m in a.models:
        if m.passed:
            w = m.worst
            lines.append(f"model {m.model}: pass (worst {_ulps(w.ulps) if w else '-'} ULP of the output scale, "
                         f"{m.seconds:.1f} s)")
            lines += [f"  note: {c.message}" for c in m.checks if c.message]
            continue
        lines.append(f"model {m.model}: FAIL" + (f": {m.error}" if m.error else ""))
        for c in m.checks:
            if not c.passed:
                lines.append(f"  output {c.output} ({c.set}) vs {c.against}: {c.message}")
        d = m.divergence
        if d is not None:
            lines.append(f"  first divergent node: {d.node} (op {d.op}, {d.kind})")
            lines.append(f"    attrs: {d.attrs}")
            lines.append(f"    inputs: {', '.join(d.inputs)}")
            lines.append(f"    error: {d.error}")
    return lines


def print_table(run: Run, console) -> None:
    from rich.table import Table

    t = Table(title=f"Conformance ({run.date})")
    for col in HEADER:
        t.add_column(col, justify="left" if col in ("adapter", "result") else "right")
    for row in summary_rows(run):
        style = "green" if row[1] == "pass" else "red"
        t.add_row(row[0], f"[{style}]{row[1]}[/]", *row[2:])
    console.print(t)
    for a in run.adapters:
        lines = detail_lines(a)
        if any(not ln.startswith("model") or "FAIL" in ln for ln in lines) or not a.passed:
            console.print(f"[bold]{a.name}[/]")
            for ln in lines:
                console.print(ln, markup=False, highlight=False)
    s = run.summary()
    verdict = "[green]all passed[/]" if run.passed else "[red]FAILED[/]"
    console.print(f"{verdict}: {s['op_cases'] - s['op_cases_failed']}/{s['op_cases']} op cases, "
                  f"{s['models'] - s['models_failed']}/{s['models']} model runs on {s['adapters']} "
                  f"adapter{'s' if s['adapters'] != 1 else ''}")


def _op_rows(run: Run) -> tuple[list[str], list[list[str]]]:
    per = [a.per_op() for a in run.adapters]
    ops = sorted(set().union(*per)) if per else []
    header = ["op", "cases"] + [f"{a.backend}: passed, worst / bound ULP" for a in run.adapters]
    rows = []
    for op in ops:
        cells = []
        n = 0
        for p in per:
            d = p.get(op)
            if d is None:
                cells.append("-")
                continue
            n = d["cases"]
            cells.append(f"{d['passed']}/{d['cases']}, {_ulps(d['worst_error_ulps'])} / {_ulps(d['bound_ulps'])}")
        rows.append([op, str(n)] + cells)
    return header, rows


def _md_table(header, rows) -> str:
    esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in [header] + rows]
    out = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(out)


def markdown(run: Run) -> str:
    s = run.summary()
    parts = [f"# Conformance report ({run.date})", "",
             f"Host: {run.host}. Result: **{'passed' if run.passed else 'FAILED'}** "
             f"({s['op_cases'] - s['op_cases_failed']}/{s['op_cases']} op cases, "
             f"{s['models'] - s['models_failed']}/{s['models']} model runs). "
             f"Models: {', '.join(run.models) or 'none'}. "
             f"Ops: {', '.join(run.op_selection) if run.op_selection else 'all'}.",
             "", f"Tolerance policy: {run.tolerance['policy']}", "", _md_table(HEADER, summary_rows(run)), ""]
    for a in run.adapters:
        parts += [f"## {a.name}", ""]
        lines = detail_lines(a)
        parts += [f"- {ln.strip()}" if not ln.startswith("  ") else f"  - {ln.strip()}" for ln in lines] \
            or ["- nothing to report"]
        parts.append("")
    header, rows = _op_rows(run)
    if rows:
        parts += ["## Op cases by op", "", _md_table(header, rows), ""]
    return "\n".join(parts)


def _html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(run: Run) -> str:
    s = run.summary()
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>Conformance report {esc(run.date)}</title>",
             "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style></head><body>",
             f"<h1>Conformance report ({esc(run.date)})</h1>",
             f"<p>Host: {esc(run.host)}. Result: <b>{'passed' if run.passed else 'FAILED'}</b> "
             f"({s['op_cases'] - s['op_cases_failed']}/{s['op_cases']} op cases, "
             f"{s['models'] - s['models_failed']}/{s['models']} model runs). "
             f"Models: {esc(', '.join(run.models) or 'none')}. "
             f"Ops: {esc(', '.join(run.op_selection) if run.op_selection else 'all')}.</p>",
             f"<p>Tolerance policy: {esc(run.tolerance['policy'])}</p>",
             _html_table(HEADER, summary_rows(run))]
    for a in run.adapters:
        parts.append(f"<h2>{esc(a.name)}</h2><ul>")
        parts += [f"<li>{esc(ln.strip())}</li>" for ln in detail_lines(a)] or ["<li>nothing to report</li>"]
        parts.append("</ul>")
    header, rows = _op_rows(run)
    if rows:
        parts += ["<h2>Op cases by op</h2>", _html_table(header, rows)]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run: Run, path: str | os.PathLike) -> Path:
    """Markdown (.md) or HTML (.html/.htm) by extension, written atomically."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext in (".md", ".markdown"):
        text = markdown(run)
    elif ext in (".html", ".htm"):
        text = html_page(run)
    else:
        raise WgpuRuntimeError(f"--report {path}: the extension picks the format: .md or .html")
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WgpuRuntimeError(f"cannot write the report {path}: {e}") from None
    return path
