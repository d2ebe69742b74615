"""The HTML conformance report (conformance --report F.html) rendered by a real headless browser.

A passing run (the CLI, Relu* on every adapter) and a failing one (Relu's lowering replaced
in-process by a plain view of its input, so its GPU result is really wrong: the op cases and a
small model using Relu fail) are written as HTML, loaded by Debian's chromium, and the DOM it
builds is checked: the op family x adapter matrix (one column per adapter, one row per family
run), the failing cells' links land on elements of the page. A screenshot must render.
chromium is installed by tools/setup.sh: its absence fails the test."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from wgpu_runtime.ops import REGISTRY

ADAPTERS = [a for a in os.environ.get("WGPU_TEST_ADAPTERS", "vulkan,gl").split(",") if a]
WINDOW = (1400, 1600)
PASS_BG, FAIL_BG = (0xda, 0xfb, 0xe1), (0xff, 0xeb, 0xe9)     # report.CSS .pass / .fail


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium not found: tools/setup.sh installs it (apt-get install -y --no-install-recommends "
                "chromium); the HTML report is checked in a real headless browser")


def _browser(tmp_path, page, *args) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, page.as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, f"{cmd}: {out.stderr[-2000:]}"
    return out


class Dom(HTMLParser):
    """What the tests read from the browser's DOM: ids, the matrix's header cells, rows and links."""

    def __init__(self, text: str):
        super().__init__()
        self.ids: set[str] = set()
        self.matrix_header: list[str] = []
        self.families: list[str] = []
        self.models: list[str] = []
        self.cells: list[dict] = []          # {"status", "href"} per matrix cell
        self._in_matrix = self._in_head = self._in_th = False
        self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "table" and a.get("id") == "matrix":
            self._in_matrix = True
        if not self._in_matrix:
            return
        if tag == "thead":
            self._in_head = True
        elif tag == "th" and self._in_head:
            self._in_th = True
            self.matrix_header.append("")
        elif tag == "tr" and "data-family" in a:
            self.families.append(a["data-family"])
        elif tag == "tr" and "data-model" in a:
            self.models.append(a["data-model"])
        elif tag == "td" and "data-status" in a:
            self._cell = {"status": a["data-status"], "href": None}
            self.cells.append(self._cell)
        elif tag == "a" and self._cell is not None:
            self._cell["href"] = a.get("href")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_matrix = False
        elif tag == "thead":
            self._in_head = False
        elif tag == "th":
            self._in_th = False
        elif tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._in_th:
            self.matrix_header[-1] += data


def _conformance(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "conformance", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _check_page(tmp_path, page, adapters: list[dict], ops: list[str], models: list[str]) -> Dom:
    dom = Dom(_browser(tmp_path, page, "--dump-dom").stdout)
    labels = [f"{a['backend']} {a['adapter'].split(' via ')[0]}" for a in adapters]
    assert dom.matrix_header == ["op family", "ops", *labels], dom.matrix_header
    assert dom.families == sorted({REGISTRY[o].family for o in ops})
    assert len(dom.models) == len(models)
    assert len(dom.cells) == len(adapters) * (len(dom.families) + len(models))
    for cell in dom.cells:
        if cell["status"] == "fail":
            assert cell["href"], "a failing cell links to its cases"
        if cell["href"]:
            assert cell["href"].startswith("#") and cell["href"][1:] in dom.ids, cell
    return dom


def _screenshot(tmp_path, page, name: str) -> np.ndarray:
    from matplotlib.image import imread

    shot = tmp_path / name
    _browser(tmp_path, page, f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}")
    img = imread(shot)
    assert img.shape[:2] == (WINDOW[1], WINDOW[0])
    return (img[..., :3] * 255).round().astype(int)


def _pixels(img: np.ndarray, rgb) -> int:
    return int((np.abs(img - np.array(rgb)).max(axis=-1) <= 2).sum())


def test_a_passing_run_renders_as_a_green_matrix(tmp_path):
    page = tmp_path / "report.html"
    out = _conformance("--adapter", "all", "--ops", "Relu*", "--json", "--report", page)
    assert out.returncode == 0, out.stderr + out.stdout[-3000:]
    adapters = json.loads(out.stdout)["adapters"]
    assert len(adapters) >= len(ADAPTERS)
    ops = [o for o in REGISTRY if o.startswith("Relu")]
    dom = _check_page(tmp_path, page, adapters, ops, [])
    assert {c["status"] for c in dom.cells} == {"pass"}
    img = _screenshot(tmp_path, page, "pass.png")
    assert _pixels(img, PASS_BG) > 5000 and _pixels(img, FAIL_BG) < 2000   # the verdict badge aside


def test_a_broken_kernel_renders_failing_cells_linked_to_its_cases(tmp_path, capsys, monkeypatch):
    from fixtures.tiny_models import tiny_model
    from wgpu_runtime.__main__ import main

    model = tiny_model(tmp_path / "tiny")                 # MatMul -> BiasAdd -> Relu -> MatMul
    # Relu lowered as a plain view of its input (as if its kernel did nothing): negatives leak
    monkeypatch.setattr(REGISTRY["Relu"], "lower", lambda ctx: ctx.alias())
    # the graph as written: the load-time optimizer would fuse Relu into the matmul's epilogue, so
    # the broken stand-alone Relu kernel would never run
    monkeypatch.setenv("WGPU_RUNTIME_OPTIMIZE", "0")
    page = tmp_path / "report.html"
    ops = ["Relu", "Relu6", "Sum"]
    code = main(["conformance", "--adapter", "all", "--ops", ",".join(ops), str(model), "--json", "--report",
                 str(page)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    adapters = report["adapters"]
    dom = _check_page(tmp_path, page, adapters, ops, [str(model)])
    # per adapter: elementwise (Relu) fails, reduce (Sum) passes, the model fails
    assert [c["status"] for c in dom.cells] == ["fail"] * len(adapters) + ["pass"] * len(adapters) \
        + ["fail"] * len(adapters), dom.cells
    assert dom.families == ["elementwise", "reduce"]
    assert {f"fail-a{i}-elementwise" for i in range(len(adapters))} <= dom.ids
    assert {f"model-a{i}-m0" for i in range(len(adapters))} <= dom.ids
    text = page.read_text()
    assert "dense/Relu" in text and "first divergent node" in text
    for a in adapters:                                      # every failing case is listed
        assert a["ops"]["failed"] > 0
        for f in a["ops"]["failures"]:
            assert f["op"] == "Relu" and f["family"] == "elementwise"
    img = _screenshot(tmp_path, page, "fail.png")
    assert _pixels(img, FAIL_BG) > 5000 and _pixels(img, PASS_BG) > 2000


def test_text_is_escaped_and_an_adapter_that_cannot_open_is_not_run(tmp_path):
    # results built by hand, as a run would: hostile text everywhere, and a second adapter whose
    # device could not be opened (its cells are "not run" and link to the reason)
    from wgpu_runtime.conformance.report import write_report
    from wgpu_runtime.conformance.results import AdapterResult, CaseResult, Run

    evil = "<script>document.title='pwned'</script>"
    a = AdapterResult(f"dev {evil} via Vulkan", "Vulkan",
                      cases=[CaseResult("Relu", 0, evil, False, 1e9, 84.0, f"got {evil}")])
    lost = AdapterResult("lost device via OpenGL", "OpenGL", error=f"cannot open a device: {evil}")
    run = Run([a, lost], [], ["Relu"], {"policy": evil}, "2026-01-01 00:00 UTC", evil)
    page = write_report(run, tmp_path / "evil.html")
    assert "<script>" not in page.read_text()
    dom = Dom(_browser(tmp_path, page, "--dump-dom").stdout)
    assert dom.matrix_header == ["op family", "ops", f"Vulkan dev {evil}", "OpenGL lost device"]
    assert dom.families == ["elementwise"]
    assert [(c["status"], c["href"]) for c in dom.cells] == [("fail", "#fail-a0-elementwise"),
                                                             ("notrun", "#adapter-a1")]
    assert {"fail-a0-elementwise", "adapter-a1"} <= dom.ids
