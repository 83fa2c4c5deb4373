"""LoadGen rows as table cells and notes: what `vtk bench --scenario` prints and `vtk report` shows."""

from __future__ import annotations

from vtk_vision.bench.keys import runtime_label
from vtk_vision.bench.percentiles import shown

__all__ = ["LOAD_COLUMNS", "late_notes", "load_table", "verdict_notes"]


LOAD_COLUMNS = ["runtime", "thr", "workers", "batch", "rate/s", "done/s", "p50 ms", "p99 ms", "late p99", "verdict"]
_RIGHT = {"thr", "workers", "batch", "rate/s", "done/s", "p50 ms", "p99 ms", "late p99"}


def _num(value, fmt: str) -> str:
    return "-" if not isinstance(value, (int, float)) else format(value, fmt)


def load_table(section: dict) -> tuple[str, list[str], list[list[str]], set[str]]:
    """(title, columns, cells, right-aligned) of report["load"]. The verdict cell is LoadGen's word, or the status
    of a row that did not run: the checks an INVALID row missed and why a row did not run are lines under the
    table (`verdict_notes`), which kept five such rows to one line each at 80 columns, not five."""
    slo = any(r.get("slo") for r in section["rows"])
    columns = [*LOAD_COLUMNS[:4], *(["peak/s"] if slo else []), *LOAD_COLUMNS[4:]]
    cells = []
    for r in section["rows"]:
        head = [runtime_label(r), str(r["threads"]), str(r.get("workers", "-")), str(r.get("max_batch", "-"))]
        if r["status"] != "ok":
            cells.append(head + ["-"] * (len(columns) - len(head) - 1) + [str(r["status"])])
            continue
        lat, n = r["latency_ms"], r.get("queries")
        peak = [_num((r.get("slo") or {}).get("peak_qps"), ",.0f") if r.get("slo") else "-"] if slo else []
        # offline issues one query of every sample: its latency is the whole run's, no per-query figure
        p50, p99 = (("-", "-") if r["scenario"] == "offline" else
                    (shown(lat.get("p50"), n, 0.5, ".3f"), shown(lat.get("p99"), n, 0.99, ".3f")))
        cells.append(head + peak + [_num(r.get("target_qps"), ",.0f"), _num(r.get("completed_qps"), ",.0f"), p50, p99,
                                    _num(r["lateness_ms"].get("p99"), ".3f"), str(r["validity"])])
    budget = next((r["slo"] for r in section["rows"] if r.get("slo")), None)
    title = (f"LoadGen {section['scenario']}"
             + (f": peak rate with p{100 * budget['percentile']:g} <= {budget['budget_ms']:g} ms" if budget else ""))
    return title, columns, cells, _RIGHT | ({"peak/s"} if slo else set())


def late_notes(section: dict) -> list[str]:
    """A line for each row whose p99 is mostly LoadGen's own issue delay: the host could not issue queries on
    time, so that p99 is the machine's, not the model's."""
    out = []
    for r in section["rows"]:
        late, p99 = (r.get("lateness_ms") or {}).get("p99"), (r.get("latency_ms") or {}).get("p99")
        if r["status"] == "ok" and isinstance(late, (int, float)) and isinstance(p99, (int, float)) and late > p99 / 2:
            out.append(f"{runtime_label(r)}, {r['threads']} thr: LoadGen issued queries up to {late:.3f} ms late (p99) "
                       f"of a {p99:.3f} ms p99 latency: the generator was late, the host is busy; that p99 is the "
                       f"machine's, not the model's")
    return out


def verdict_notes(section: dict) -> list[str]:
    """A line for each row that did not run (why), or that LoadGen called INVALID (the checks it missed) or
    whose search found no rate meeting the budget (the rates it tried): one line a row."""
    out = []
    for r in section["rows"]:
        name = f"{runtime_label(r)}, {r['threads']} thr"
        if r["status"] != "ok":
            out.append(f"{name}: {r['status']}: {r.get('reason')}")
            continue
        said = []
        failed = [str(k) for k, met in (r.get("checks") or {}).items() if met is False]
        if r.get("validity") != "VALID":
            said.append(f"{r.get('validity')}" + (f" ({', '.join(failed)} not met)" if failed else ""))
        slo, probes = r.get("slo") or {}, (r.get("slo") or {}).get("probes") or []
        if slo and slo.get("peak_qps") is None and probes:
            rates = [p["qps"] for p in probes]
            said.append(f"no rate from {max(rates):,.0f}/s down to {min(rates):,.0f}/s met "
                        f"p{100 * slo['percentile']:g} <= {slo['budget_ms']:g} ms ({len(rates)} LoadGen tests)")
        if said:
            out.append(f"{name}: {'; '.join(said)}")
    return out
