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


def error_vs_bound(ulps: float, bound: float) -> str:
    """"12.5 / 168 ULP"; for exact comparisons (integers, booleans: bound 0) "exact" or
    "mismatch (exact)"."""
    if bound == 0:
        return "exact" if ulps == 0 else "mismatch (exact)"
    return f"{_ulps(ulps)} / {_ulps(bound)} ULP"


def worst_op(a: AdapterResult) -> str:
    c = a.worst_case()
    if c is None:
        return "-"
    return f"{error_vs_bound(c.ulps, c.bound)} ({c.op} #{c.index})"


def worst_model(a: AdapterResult) -> str:
    m = a.worst_model()
    if m is None:
        return "-"
    w = m.worst
    name = Path(m.model).name
    if m.error or w is None:
        return f"error ({name})"
    return f"{_ulps(w.ulps)} / {_ulps(w.bound)} ULP ({name})"


def column_notes(a: AdapterResult) -> list[str]:
    """Lines that tell apart columns of a cluster run (node, driver, wgpu version); none otherwise."""
    return list(getattr(a, "column_notes", ()))


def column_head(a: AdapterResult, sep: str = "; ") -> str:
    """A column's name in the family matrix: the adapter's label, then its column notes."""
    return sep.join([a.label, *column_notes(a)])


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
    lines = [f"kernel does not compile here, passed over: {u}" for u in a.uncompiled[:MAX_LISTED]]
    if len(a.uncompiled) > MAX_LISTED:
        lines.append(f"... and {len(a.uncompiled) - MAX_LISTED} more variants passed over (see --json)")
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

    t = Table(title=f"Conformance ({run.when})")
    for col in HEADER:
        t.add_column(col, justify="left" if col in ("adapter", "result") else "right")
    for row in summary_rows(run):
        style = "green" if row[1] == "pass" else "red"
        t.add_row(row[0], f"[{style}]{row[1]}[/]", *row[2:])
    console.print(t)
    for a in run.adapters:
        lines = detail_lines(a)
        if any(not ln.startswith("model") or "FAIL" in ln for ln in lines) or not a.passed:
            console.print(f"[bold]{a.name}[/]" + "".join(f" · {n}" for n in column_notes(a)), highlight=False)
            for ln in lines:
                console.print(ln, markup=False, highlight=False)
    if any(column_notes(a) for a in run.adapters):      # a cluster run: the matrix, a column per node and adapter
        header, rows = _family_rows(run, sep="\n")
        m = Table(title="op families x (node, adapter)")
        for col in header:
            m.add_column(col, overflow="fold")
        for row in rows:
            m.add_row(*row)
        console.print(m)
    s = run.summary()
    verdict = "[green]all passed[/]" if run.passed else "[red]FAILED[/]"
    console.print(f"{verdict}: {s['op_cases'] - s['op_cases_failed']}/{s['op_cases']} op cases, "
                  f"{s['models'] - s['models_failed']}/{s['models']} model runs on {s['adapters']} "
                  f"adapter{'s' if s['adapters'] != 1 else ''}")


def _op_rows(run: Run) -> tuple[list[str], list[list[str]]]:
    per = [a.per_op() for a in run.adapters]
    ops = sorted(set().union(*per)) if per else []
    header = ["op", "cases"] + [f"{a.backend}: passed, worst error / bound" for a in run.adapters]
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
            cells.append(f"{d['passed']}/{d['cases']}, {error_vs_bound(d['worst_error_ulps'], d['bound_ulps'])}")
        rows.append([op, str(n)] + cells)
    return header, rows


def _family_rows(run: Run, sep: str = "; ") -> tuple[list[str], list[list[str]]]:
    """The op family x adapter matrix as text: status, worst error / bound, cases passed."""
    per = [a.per_family() for a in run.adapters]
    families = sorted(set().union(*per)) if per else []
    header = ["op family"] + [column_head(a, sep) for a in run.adapters]
    rows = []
    for fam in families:
        cells = []
        for a, p in zip(run.adapters, per):
            d = p.get(fam)
            if a.error or d is None:
                cells.append("not run")
                continue
            status = "pass" if d["passed"] == d["cases"] else "FAIL"
            cells.append(f"{status}: {error_vs_bound(d['worst'].ulps, d['worst'].bound)}, "
                         f"{d['passed']}/{d['cases']} cases")
        rows.append([fam] + cells)
    return header, rows


def _md_table(header, rows) -> str:
    esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in [header] + rows]
    out = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(out)


def markdown(run: Run) -> str:
    s = run.summary()
    parts = [f"# Conformance report ({run.when})", "",
             f"Host: {run.host}. Result: **{'passed' if run.passed else 'FAILED'}** "
             f"({s['op_cases'] - s['op_cases_failed']}/{s['op_cases']} op cases, "
             f"{s['models'] - s['models_failed']}/{s['models']} model runs). "
             f"Models: {', '.join(run.models) or 'none'}. "
             f"Ops: {', '.join(run.op_selection) if run.op_selection else 'all'}.",
             "", f"Tolerance policy: {run.tolerance['policy']}", "", _md_table(HEADER, summary_rows(run)), ""]
    for a in run.adapters:
        parts += [f"## {a.label if column_notes(a) else a.name}", ""]
        parts += [f"- {n}" for n in column_notes(a)]
        lines = detail_lines(a)
        parts += [f"- {ln.strip()}" if not ln.startswith("  ") else f"  - {ln.strip()}" for ln in lines] \
            or ["- nothing to report"]
        parts.append("")
    header, rows = _family_rows(run)
    if rows:
        parts += ["## Op families", "", _md_table(header, rows), ""]
    header, rows = _op_rows(run)
    if rows:
        parts += ["## Op cases by op", "", _md_table(header, rows), ""]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------- HTML
# One self-contained page (inline CSS, no script, no external resource; every text escaped): the
# summary table, an op family x adapter matrix coloured by status with the worst error in each
# cell, failing cells linking to their cases listed below, then the models and the per-op table.
MAX_LISTED_HTML = 200    # failing cases listed per adapter and family in the HTML page

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:24px;color:#1f2328}
h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:14px;margin:14px 0 4px}
.meta{color:#57606a;margin:2px 0}.verdict{display:inline-block;padding:1px 10px;border-radius:10px;
font-weight:600}.verdict.pass{background:#dafbe1;color:#116329}.verdict.fail{background:#ffebe9;color:#a40e26}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;
vertical-align:top}thead th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.matrix th[scope=row]{font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:600}
table.matrix td.cell{min-width:150px;font-variant-numeric:tabular-nums}
th.adapter .count{display:block;font-weight:400;font-size:12px;color:#57606a}
td.cell .status{font-weight:700;margin-right:6px}td.cell .ulps{font-size:12px}td.cell .count{font-size:12px;
color:#57606a;display:block}td.cell a{color:inherit}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}.notrun{background:#eaeef2;color:#57606a}
tbody.models th{font-family:inherit}tr.group th{background:#f6f8fa;font-weight:600;text-align:left}
.legend span{display:inline-block;padding:1px 8px;margin-right:8px;border-radius:4px}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
td.msg{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;max-width:900px}
:target{outline:3px solid #bf8700;outline-offset:2px}
"""


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)


def family_anchor(adapter_index: int, family: str) -> str:
    """The id of the failing cases of ``family`` on the adapter at ``adapter_index``."""
    return f"fail-a{adapter_index}-{_slug(family)}"


def model_anchor(adapter_index: int, model_index: int) -> str:
    """The id of a model's outcome on the adapter at ``adapter_index``."""
    return f"model-a{adapter_index}-m{model_index}"


def adapter_anchor(adapter_index: int) -> str:
    """The id of the reason an adapter could not run."""
    return f"adapter-a{adapter_index}"


def _html_table(header, rows, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table{f' class={cls!r}' if cls else ''}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(status: str, worst: str, count: str, href: str | None, title: str) -> str:
    """One matrix cell: status ("pass" / "FAIL" / "not run"), worst error, counts; a link."""
    cls = {"pass": "pass", "FAIL": "fail"}.get(status, "notrun")
    label = html.escape(status)
    if href:
        label = f"<a href='#{html.escape(href)}'>{label}</a>"
    return (f"<td class='cell {cls}' data-status='{cls}' title='{html.escape(title, quote=True)}'>"
            f"<span class='status'>{label}</span><span class='ulps'>{html.escape(worst)}</span>"
            f"<span class='count'>{html.escape(count)}</span></td>")


def _matrix(run: Run) -> str:
    esc = html.escape
    per = [a.per_family() for a in run.adapters]
    families = sorted(set().union(*per)) if per else []
    ops_in = {f: set().union(*(p[f]["ops"] for p in per if f in p)) for f in families}
    head = "".join(f"<th class='adapter' title='{esc(a.name, quote=True)}'>{esc(a.label)}"
                   + "".join(f"<span class='count'>{esc(n)}</span>" for n in column_notes(a)) + "</th>"
                   for a in run.adapters)
    rows = []
    for fam in families:
        cells = []
        for i, (a, p) in enumerate(zip(run.adapters, per)):
            d = p.get(fam)
            if a.error or d is None:
                cells.append(_cell("not run", "", a.error and "adapter could not open",
                                   adapter_anchor(i) if a.error else None,
                                   a.error or f"no {fam} case ran on this adapter"))
                continue
            w = d["worst"]
            ok = d["passed"] == d["cases"]
            cells.append(_cell("pass" if ok else "FAIL", error_vs_bound(w.ulps, w.bound),
                               f"{d['passed']}/{d['cases']} cases",
                               None if ok else family_anchor(i, fam),
                               f"worst: {w.op} case {w.index} ({w.note or 'no note'}), "
                               f"{_ulps(w.ulps)} ULP against a bound of {_ulps(w.bound)}"))
        n_ops = len(ops_in[fam])
        rows.append(f"<tr data-family='{esc(fam, quote=True)}'><th scope='row'>{esc(fam)}</th>"
                    f"<td class='num'>{n_ops} op{'s' if n_ops != 1 else ''}</td>{''.join(cells)}</tr>")
    model_rows = []
    for j, path in enumerate(run.models):
        cells = []
        for i, a in enumerate(run.adapters):
            m = a.models[j] if j < len(a.models) else None
            if a.error or m is None:
                cells.append(_cell("not run", "", "", adapter_anchor(i) if a.error else None, a.error or "not run"))
                continue
            w = m.worst
            worst = "error" if m.error else (f"{_ulps(w.ulps)} / {_ulps(w.bound)} ULP" if w else "-")
            cells.append(_cell("pass" if m.passed else "FAIL", worst, f"{m.seconds:.1f} s", model_anchor(i, j),
                               m.error or "worst output error in ULPs of the output's scale"))
        model_rows.append(f"<tr data-model='{esc(path, quote=True)}'><th scope='row' title='{esc(path, quote=True)}'>"
                          f"{esc(Path(path).name)}</th><td class='num'>model</td>{''.join(cells)}</tr>")
    ncols = 2 + len(run.adapters)
    parts = ["<table class='matrix' id='matrix'>",
             f"<thead><tr><th>op family</th><th>ops</th>{head}</tr></thead>",
             f"<tbody class='families'>{''.join(rows)}</tbody>"]
    if model_rows:
        parts.append(f"<tbody class='models'><tr class='group'><th colspan='{ncols}'>models (error in ULPs of the "
                     f"output scale)</th></tr>{''.join(model_rows)}</tbody>")
    parts.append("</table>")
    return "".join(parts)


def _failures(run: Run) -> list[str]:
    esc = html.escape
    parts = []
    for i, a in enumerate(run.adapters):
        if a.error:
            parts.append(f"<h3 id='{adapter_anchor(i)}'>{esc(a.label)}: could not run</h3>"
                         f"<p class='mono'>{esc(a.error)}</p>")
            continue
        by_family: dict[str, list] = {}
        for c in a.cases:
            if not c.passed:
                by_family.setdefault(c.family, []).append(c)
        if not by_family:
            continue
        parts.append(f"<h3>{esc(a.label)}</h3>")
        for fam in sorted(by_family):
            failing = by_family[fam]
            rows = "".join(
                f"<tr><td class='mono'>{esc(c.op)}</td><td class='num'>{c.index}</td><td>{esc(c.note)}</td>"
                f"<td class='num'>{esc(error_vs_bound(c.ulps, c.bound))}</td><td class='msg'>{esc(c.message)}</td></tr>"
                for c in failing[:MAX_LISTED_HTML])
            more = (f"<p>... and {len(failing) - MAX_LISTED_HTML} more failing {esc(fam)} cases (see --json)</p>"
                    if len(failing) > MAX_LISTED_HTML else "")
            parts.append(f"<h4 id='{family_anchor(i, fam)}'>{esc(fam)}: {len(failing)} failing "
                         f"case{'s' if len(failing) != 1 else ''} on {esc(a.label)}</h4>"
                         "<table class='failures'><thead><tr><th>op</th><th>case</th><th>note</th>"
                         f"<th>error / bound</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>{more}")
    return parts or ["<p>No op case failed.</p>"]


def _models(run: Run) -> list[str]:
    esc = html.escape
    parts = []
    for i, a in enumerate(run.adapters):
        for j, m in enumerate(a.models):
            w = m.worst
            head = (f"pass, worst {_ulps(w.ulps) if w else '-'} ULP of the output scale" if m.passed
                    else "FAIL" + (f": {m.error}" if m.error else ""))
            items = []
            for c in m.checks:
                if not c.passed:
                    items.append(f"output {c.output} ({c.set}) vs {c.against}: {c.message}")
                elif c.message:
                    items.append(f"note: {c.message}")
            d = m.divergence
            if d is not None:
                items += [f"first divergent node: {d.node} (op {d.op}, {d.kind})", f"attrs: {d.attrs}",
                          f"inputs: {', '.join(d.inputs)}", f"error: {d.error}"]
            lis = "".join(f"<li class='mono'>{esc(x)}</li>" for x in items)
            parts.append(f"<h4 id='{model_anchor(i, j)}'><span class='mono'>{esc(m.model)}</span> on "
                         f"{esc(a.label)}: <span class='{'pass' if m.passed else 'fail'}'>{esc(head)}</span> "
                         f"({m.seconds:.1f} s)</h4>" + (f"<ul>{lis}</ul>" if lis else ""))
    return parts


def html_page(run: Run) -> str:
    s = run.summary()
    esc = html.escape
    verdict = "pass" if run.passed else "fail"
    summary = "".join(
        "<tr>" + "".join(f"<td class='{('pass' if c == 'pass' else 'fail') if k == 1 else ''}'>{esc(str(c))}</td>"
                         for k, c in enumerate(r)) + "</tr>" for r in summary_rows(run))
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>Conformance report {esc(run.when)}</title>", f"<style>{CSS}</style></head><body>",
             f"<h1>Conformance report <span class='verdict {verdict}'>"
             f"{'passed' if run.passed else 'FAILED'}</span></h1>",
             f"<p class='meta'>{esc(run.when)} · {esc(run.host)} · "
             f"{s['op_cases'] - s['op_cases_failed']}/{s['op_cases']} op cases and "
             f"{s['models'] - s['models_failed']}/{s['models']} model runs passed on {s['adapters']} "
             f"adapter{'s' if s['adapters'] != 1 else ''} · ops: "
             f"{esc(', '.join(run.op_selection) if run.op_selection else 'all')} · models: "
             f"{esc(', '.join(run.models) or 'none')}</p>",
             f"<p class='meta'>Tolerance policy: {esc(run.tolerance['policy'])}</p>",
             "<h2>Adapters</h2>",
             "<table class='summary'><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADER)
             + f"</tr></thead><tbody>{summary}</tbody></table>",
             "<h2>Op families × adapters</h2>",
             "<p class='legend'><span class='pass'>pass</span><span class='fail'>FAIL</span>"
             "<span class='notrun'>not run</span> Each cell: the worst case's error / its bound in ULPs "
             "(the case closest to or furthest past its bound) and the cases passed; a failing cell links "
             "to its cases below.</p>",
             _matrix(run),
             "<h2 id='failures'>Failing op cases</h2>", *_failures(run)]
    models = _models(run)
    if models:
        parts += ["<h2 id='models'>Models</h2>", *models]
    header, rows = _op_rows(run)
    if rows:
        parts += ["<h2 id='ops'>Op cases by op</h2>", _html_table(header, rows, "ops")]
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
