"""The fastest thread count for each runtime, provider and batch size of a bench.

More threads is not always faster: on a 2-core machine ONNX Runtime ran
LeNet-5 at batch 256 in 5.0 ms on one thread and 6.8-8.2 ms on two. So the
bench names, for every runtime and batch, the count with the lowest p50.
"""

from __future__ import annotations

__all__ = ["fastest"]


def _group(row: dict) -> tuple:
    return row["runtime"], row.get("precision", "fp32"), row["provider"], row["batch"]


def fastest(rows: list[dict]) -> list[dict]:
    """One entry per runtime x precision x provider x batch timed at two or more thread counts: the count
    with the lowest p50, and every count's p50 for comparison."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] == "ok" and r.get("threads") is not None:
            groups.setdefault(_group(r), []).append(r)
    out = []
    for (runtime, precision, provider, batch), rs in groups.items():
        if len({r["threads"] for r in rs}) < 2:
            continue
        best = min(rs, key=lambda r: r["latency_ms"]["p50"])
        out.append({"runtime": runtime, "precision": precision, "provider": provider, "batch": batch,
                    "threads": best["threads"], "p50_ms": best["latency_ms"]["p50"],
                    "unstable": bool(best.get("unstable")),
                    "p50_ms_by_threads": {str(r["threads"]): r["latency_ms"]["p50"] for r in rs}})
    return out
