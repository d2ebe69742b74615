"""A saved bench record against a new one: per metric the old and new value, their ratio and a
verdict, as ``pytest-benchmark compare`` / trtexec users read them.

``bench --save base.json`` writes a record; ``bench --compare base.json`` runs again and shows
the comparison (``--json``: under ``"comparison"``). A metric within ``threshold`` (relative) of
its baseline is "same"; the overall verdict follows the median time.
"""
from __future__ import annotations

import json
from pathlib import Path

from .bench import RECORD
from .exit_codes import UsageError

# metric -> True when lower is better
METRICS = {"median_ms": True, "min_ms": True, "p90_ms": True, "p99_ms": True, "mean_ms": True,
           "stddev_ms": True, "inferences_per_s": False, "first_ms": True, "load_ms": True,
           "gpu_ms_total": True}
HEADLINE = "median_ms"
REQUIRED = ("median_ms", "min_ms", "p90_ms", "runs", "adapter", "model")   # records older than "record"
CONTEXT = ("model", "adapter", "batch", "model_format", "executor")        # differences make ratios moot


def load_record(path) -> dict:
    """A record ``bench --save`` (or ``bench --json``) wrote; UsageError for anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--compare {path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"--compare {path}: not a bench record (not readable JSON: {e})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--compare {path}: not a bench record (a JSON {type(data).__name__}, "
                         "not the object bench --save writes)")
    if data.get("record") != RECORD:
        missing = [k for k in REQUIRED if k not in data]
        if "record" in data or missing:
            raise UsageError(f"--compare {path}: not a bench record (no {', '.join(missing) or 'record'}; "
                             "save one with bench --save FILE)")
    bad = [k for k in METRICS if data.get(k) is not None and not isinstance(data.get(k), (int, float))]
    if bad:
        raise UsageError(f"--compare {path}: not a bench record ({', '.join(bad)} not numbers)")
    return data


def _verdict(old, new, lower_is_better: bool, threshold: float) -> tuple[float | None, str]:
    if old is None or new is None:
        return None, "n/a"
    if old == 0:
        return None, "same" if new == 0 else "n/a"
    ratio = new / old
    if abs(ratio - 1.0) <= threshold:
        return ratio, "same"
    better = ratio < 1.0 if lower_is_better else ratio > 1.0
    return ratio, "better" if better else "worse"


def compare(old: dict, new: dict, threshold: float = 0.05, baseline: str | None = None) -> dict:
    """``{"baseline", "threshold", "rows": [{metric, old, new, ratio, verdict}], "verdict",
    "notes"}``; ratio is new / old; verdict "better" / "worse" / "same" (within threshold) / "n/a".
    The overall verdict: "regression", "improvement" or "no change" of the median time."""
    rows = []
    for metric, lower in METRICS.items():
        if metric not in old and metric not in new:
            continue
        ratio, verdict = _verdict(old.get(metric), new.get(metric), lower, threshold)
        rows.append({"metric": metric, "old": old.get(metric), "new": new.get(metric), "ratio": ratio,
                     "verdict": verdict})
    head = next((r for r in rows if r["metric"] == HEADLINE), None)
    overall = {"worse": "regression", "better": "improvement"}.get(head["verdict"] if head else "", "no change")
    notes = [f"{k} differs: {old.get(k)!r} (baseline) vs {new.get(k)!r}" for k in CONTEXT
             if k in old and k in new and old.get(k) != new.get(k)]
    return {"baseline": baseline, "baseline_created": old.get("created"), "threshold": threshold, "rows": rows,
            "verdict": overall, "notes": notes}
