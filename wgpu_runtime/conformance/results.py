"""What a conformance run found: per adapter, per op case and per model; as JSON-ready dicts."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


def family_of(op: str) -> str:
    """The op's family (the wgpu_runtime/ops module registering it); "other" for a name the
    registry does not hold (a result read back from an older run)."""
    from ..ops import REGISTRY

    d = REGISTRY.get(op)
    return d.family if d is not None else "other"


def _num(x: float):
    """JSON has no inf/nan: None stands for an unbounded error (a crash, a wrong shape)."""
    return None if x is None or not math.isfinite(x) else round(float(x), 3)


@dataclass
class CaseResult:
    op: str
    index: int
    note: str
    passed: bool
    ulps: float = 0.0          # worst error over the case's outputs (tolerance units)
    bound: float = 0.0         # the bound it was held to
    message: str = ""          # why it failed

    @property
    def family(self) -> str:
        return family_of(self.op)

    @property
    def ratio(self) -> float:
        if self.bound > 0:
            return self.ulps / self.bound
        return 0.0 if self.ulps == 0 else math.inf

    @property
    def badness(self) -> tuple:
        """Orders cases from best to worst: closeness to the bound, then the error; among exact
        passes, a float case (which has a bound to show) over an exact comparison."""
        return (self.ratio, self.ulps, self.bound)

    def to_dict(self) -> dict:
        return {"op": self.op, "family": self.family, "case": self.index, "note": self.note, "passed": self.passed,
                "error_ulps": _num(self.ulps), "bound_ulps": _num(self.bound), "message": self.message}


@dataclass
class OutputCheck:
    set: str                   # the input set ("random" or the stored reference's name)
    output: str
    against: str               # "numpy reference executor" | "stored reference <file>:<key>"
    passed: bool
    ulps: float
    bound: float
    message: str = ""

    def to_dict(self) -> dict:
        return {"inputs": self.set, "output": self.output, "against": self.against, "passed": self.passed,
                "error_ulps": _num(self.ulps), "bound_ulps": _num(self.bound), "message": self.message}


@dataclass
class Divergence:
    """The first node whose GPU output disagrees, in topological order."""

    node: str
    op: str
    attrs: dict
    kind: str                  # "node": wrong given its own GPU inputs; "drift": only vs the
                               # reference chain; "stored reference": only vs the stored outputs;
                               # "unlocated": a dynamic model, judged by its outputs only
    error: str
    inputs: list = field(default_factory=list)   # "name: dtype[shape]"
    output: str = ""

    def to_dict(self) -> dict:
        return {"node": self.node, "op": self.op, "attrs": self.attrs, "kind": self.kind, "error": self.error,
                "inputs": self.inputs, "output": self.output}


@dataclass
class ModelResult:
    model: str
    passed: bool = True
    checks: list[OutputCheck] = field(default_factory=list)
    divergence: Divergence | None = None
    error: str = ""            # the model could not run (unsupported ops, a planning error...)
    seconds: float = 0.0

    @property
    def worst(self) -> OutputCheck | None:
        return max(self.checks, key=lambda c: (c.ulps / c.bound) if c.bound else c.ulps, default=None)

    def to_dict(self) -> dict:
        w = self.worst
        return {"model": self.model, "passed": self.passed, "error": self.error,
                "worst_error_ulps": _num(w.ulps) if w else None, "seconds": round(self.seconds, 2),
                "checks": [c.to_dict() for c in self.checks],
                "first_divergent_node": self.divergence.to_dict() if self.divergence else None}


@dataclass
class AdapterResult:
    name: str                  # "llvmpipe (...) via Vulkan (...)"
    backend: str
    cases: list[CaseResult] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)
    error: str = ""            # the adapter could not be opened
    seconds: float = 0.0
    # kernel variants whose kernels did not compile here, which planning passed over (graph/plan.py
    # build_plan): the cases still ran, on other variants, but a kernel the adapter rejects is a finding
    uncompiled: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Short name for tables: backend and device ("Vulkan llvmpipe (LLVM 15.0.6, 256 bits)")."""
        device = self.name.split(" via ")[0]
        return f"{self.backend} {device}"

    @property
    def ops_passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def ops_failed(self) -> int:
        return sum(not c.passed for c in self.cases)

    @property
    def models_passed(self) -> int:
        return sum(m.passed for m in self.models)

    @property
    def passed(self) -> bool:
        return not self.error and not self.uncompiled and self.ops_failed == 0 and all(m.passed for m in self.models)

    def worst_case(self) -> CaseResult | None:
        """The case closest to (or furthest past) its bound."""
        return max(self.cases, key=lambda c: c.badness, default=None)

    def worst_model(self) -> ModelResult | None:
        def key(m):               # a model that could not run is the worst
            w = m.worst
            return (bool(m.error), (w.ulps / w.bound) if w and w.bound else 0.0)
        return max(self.models, key=key, default=None)

    def per_op(self) -> dict[str, dict]:
        """op -> {cases, passed, worst_error_ulps, bound_ulps}: the error and bound of the op's
        case closest to (or furthest past) its bound, as in worst_case()."""
        out: dict[str, dict] = {}
        worst: dict[str, CaseResult] = {}
        for c in self.cases:
            d = out.setdefault(c.op, {"cases": 0, "passed": 0})
            d["cases"] += 1
            d["passed"] += c.passed
            w = worst.get(c.op)
            if w is None or c.badness > w.badness:
                worst[c.op] = c
        for op, d in out.items():
            d["worst_error_ulps"], d["bound_ulps"] = worst[op].ulps, worst[op].bound
        return out

    def per_family(self) -> dict[str, dict]:
        """family -> {ops, cases, passed, worst}: worst is the case closest to (or furthest
        past) its bound, as in worst_case()."""
        out: dict[str, dict] = {}
        for c in self.cases:
            d = out.setdefault(c.family, {"ops": set(), "cases": 0, "passed": 0, "worst": None})
            d["ops"].add(c.op)
            d["cases"] += 1
            d["passed"] += c.passed
            if d["worst"] is None or c.badness > d["worst"].badness:
                d["worst"] = c
        return out

    def to_dict(self) -> dict:
        wc = self.worst_case()
        per_family = {fam: {"ops": len(d["ops"]), "cases": d["cases"], "passed": d["passed"],
                            "worst_error_ulps": _num(d["worst"].ulps), "bound_ulps": _num(d["worst"].bound)}
                      for fam, d in sorted(self.per_family().items())}
        per_op = {op: {**d, "worst_error_ulps": _num(d["worst_error_ulps"]), "bound_ulps": _num(d["bound_ulps"])}
                  for op, d in self.per_op().items()}
        return {"adapter": self.name, "backend": self.backend, "passed": self.passed, "error": self.error,
                "seconds": round(self.seconds, 2), "uncompiled_variants": list(self.uncompiled),
                "ops": {"cases": len(self.cases), "passed": self.ops_passed, "failed": self.ops_failed,
                        "worst": wc.to_dict() if wc else None, "per_op": per_op, "per_family": per_family,
                        "failures": [c.to_dict() for c in self.cases if not c.passed]},
                "models": {"total": len(self.models), "passed": self.models_passed,
                           "failed": len(self.models) - self.models_passed,
                           "results": [m.to_dict() for m in self.models]}}


@dataclass
class Run:
    adapters: list[AdapterResult]
    models: list[str]
    op_selection: list[str] | None
    tolerance: dict
    date: str
    host: str
    precision: str = "float32"     # conformance --precision: float16 runs the matmuls / convolutions in f16

    @property
    def when(self) -> str:
        """The date, and the precision where it is not float32 (report titles)."""
        return self.date if self.precision == "float32" else f"{self.date}, precision {self.precision}"

    @property
    def passed(self) -> bool:
        return bool(self.adapters) and all(a.passed for a in self.adapters)

    def summary(self) -> dict:
        worst_case = max(((a, a.worst_case()) for a in self.adapters if a.cases),
                         key=lambda ac: ac[1].badness, default=None)
        worst_model = max(((a, m, m.worst) for a in self.adapters for m in a.models if m.worst),
                          key=lambda amw: amw[2].ulps / amw[2].bound if amw[2].bound else amw[2].ulps, default=None)
        return {"passed": self.passed, "adapters": len(self.adapters),
                "worst_op_case": None if worst_case is None else {"adapter": worst_case[0].name,
                                                                  **worst_case[1].to_dict()},
                "worst_model_output": None if worst_model is None else {
                    "adapter": worst_model[0].name, "model": worst_model[1].model, **worst_model[2].to_dict()},
                "adapters_passed": sum(a.passed for a in self.adapters),
                "op_cases": sum(len(a.cases) for a in self.adapters),
                "op_cases_failed": sum(a.ops_failed for a in self.adapters),
                "models": sum(len(a.models) for a in self.adapters),
                "models_failed": sum(len(a.models) - a.models_passed for a in self.adapters)}

    def to_dict(self) -> dict:
        return {"date": self.date, "host": self.host, "precision": self.precision, "models": self.models,
                "ops": self.op_selection,
                "tolerance": self.tolerance, "adapters": [a.to_dict() for a in self.adapters],
                "summary": self.summary()}
