"""What names a bench row, in tables and between two bench files."""

from __future__ import annotations

__all__ = ["load_key", "report_threads", "row_key", "runtime_label", "thread_label"]


def runtime_label(row: dict) -> str:
    """'onnx', or 'onnx int8' for a reduced-precision artifact (rows from before precisions are fp32)."""
    precision = row.get("precision", "fp32")
    # "file": a file vtk never wrote (`vtk bench FILE`), at whatever precision its author made it
    return row["runtime"] if precision in ("fp32", "file") else f"{row['runtime']} {precision}"


def report_threads(report: dict) -> int | None:
    """The one thread count of a file written before thread scaling (its rows carry none), else None."""
    threads = (report.get("environment") or {}).get("threads")
    return threads if isinstance(threads, int) else None


def row_key(row: dict, default_threads: int | None = None) -> str:
    """Runtime, precision, provider, batch and thread count: 'onnx int8/cpu/b64/t2'. Rows from before thread
    scaling carry no count; pass the file's own (`report_threads`)."""
    threads = row.get("threads") or default_threads
    return f"{runtime_label(row)}/{row['provider']}/b{row['batch']}/t{threads or '?'}"


def load_key(row: dict) -> str:
    """A LoadGen row (`vtk bench --scenario`): 'onnx/cpu/t1/server w1 b1' (threads, workers, max batch)."""
    return (f"{runtime_label(row)}/{row['provider']}/t{row['threads']}/{row['scenario']} "
            f"w{row.get('workers')} b{row.get('max_batch')}")


def thread_label(threads: int | None) -> str:
    """'1 thread', '2 threads'."""
    return "? threads" if threads is None else f"{threads} thread{'' if threads == 1 else 's'}"
