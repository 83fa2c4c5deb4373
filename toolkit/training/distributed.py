"""Data-parallel training on torch.distributed: the process group, each rank's share of a batch, and the
launcher `vtk train --nproc N` hands to PyTorch's own (torch.distributed.run, elastic).

Every rank draws the same seeded permutation each epoch and takes its slice of
every global batch (`--batch-size` stays the global batch, so one step sees
the same images as in one process, and DDP's averaged gradient is that step's).
Validation, test and every file of the run folder belong to rank 0, which
sends the numbers the others need (validation loss for the scheduler and
early stopping) to them; nothing is counted twice. gloo on CPU, nccl on CUDA.
A job torchrun restarts (its --max-restarts) finds its run folder again
through the rendezvous run id and resumes from the last checkpoint. Each
restart joins the process group under its own prefix of torchrun's store:
with the default keys, a round restarted after a worker died inside a
collective read the dead round's addresses and failed to connect
(gloo connectFullMesh: connection refused; reproduced without vtk, as
pytorch/pytorch#167288 reports for NCCL).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

__all__ = ["World", "join_world", "global_batches", "elastic_pointer", "launch", "parse_endpoint", "parse_nnodes"]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; one process is a world of size 1."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None
    nodes: int = 1
    owns_group: bool = False   # this World initialised the process group, so it is the one to end it

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, obj: Any) -> Any:
        """Rank 0's `obj`, on every rank."""
        if self.size == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def total(self, *values: torch.Tensor) -> None:
        """Sum tensors over all ranks, in place."""
        if self.size > 1:
            for v in values:
                torch.distributed.all_reduce(v)

    def record(self, per_rank_batch: int) -> dict | None:
        if self.size == 1:
            return None
        return {"world_size": self.size, "per_rank_batch": per_rank_batch, "backend": self.backend,
                "nodes": self.nodes}

    def leave(self) -> None:
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def join_world(device_name: str) -> World:
    """The world torchrun described in the environment (WORLD_SIZE, RANK, LOCAL_RANK), joined; or one process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    backend = "nccl" if cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    owns = not torch.distributed.is_initialized()  # a caller's own group is used as it is, and left to it
    if owns:
        rank = int(os.environ["RANK"])
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true":  # torchrun's agent hosts it
            agent = torch.distributed.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), size,
                                               is_master=False, timeout=timedelta(minutes=10))
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            store = torch.distributed.PrefixStore(f"/vtk/attempt_{attempt}", agent)  # never a dead round's keys
            torch.distributed.init_process_group(backend, store=store, rank=rank, world_size=size)
        else:
            torch.distributed.init_process_group(backend)
    nodes = max(1, size // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", str(size)))))
    return World(torch.distributed.get_rank(), size, local_rank, backend, nodes, owns)


def global_batches(order: torch.Tensor, batch_size: int, world: World):
    """This rank's indices of each global batch of `order`. A last batch with fewer images than ranks is
    left out on every rank alike (a rank with nothing to step on would stall the others)."""
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        if world.size == 1:
            yield batch
        elif len(batch) >= world.size:
            yield torch.tensor_split(batch, world.size)[world.rank]


def elastic_pointer(runs_root: Path) -> Path | None:
    """Where rank 0 notes the run folder of this torchrun job, so that a restarted job resumes it."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if not run_id:
        return None
    return runs_root / f".torchrun-{''.join(c if c.isalnum() or c in '-_' else '_' for c in run_id)[:80]}"


MAX_NODES = 10_000


def parse_nnodes(text: str) -> str:
    """torchrun's --nnodes, N or MIN:MAX, checked here: torchrun itself answers `3:1` or `x` with a traceback."""
    parts = text.strip().split(":")
    if len(parts) > 2 or not all(p.strip().isdecimal() for p in parts):
        raise ValueError(f"{text!r} is not N or MIN:MAX, e.g. 2 or 1:4")
    low, high = int(parts[0]), int(parts[-1])
    if not 1 <= low <= high <= MAX_NODES:
        raise ValueError(f"{text!r}: machines from 1 to {MAX_NODES:,}, the least first, e.g. 2 or 1:4")
    return f"{low}:{high}" if len(parts) == 2 else str(low)


def parse_endpoint(text: str) -> str:
    """torchrun's --rdzv-endpoint, HOST:PORT ([IPv6]:PORT), checked here: a port that is not a number
    was a traceback from deep in torchrun."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") != host.endswith("]") or (":" in host and not host.startswith("[")):
        raise ValueError(f"{text!r}: an IPv6 address goes in brackets, e.g. [::1]:29500")
    if not sep or not host.strip("[]") or not port.isdecimal() or not 1 <= int(port) <= 65535 \
            or not all(c.isalnum() or c in ".-_:[]" for c in host):
        raise ValueError(f"{text!r} is not HOST:PORT with a port from 1 to 65535, e.g. 10.0.0.1:29500")
    return f"{host}:{int(port)}"


def launch(train_args: list[str], nproc: int, nnodes: str = "1", rdzv_endpoint: str | None = None,
           max_restarts: int = 0, rdzv_id: str | None = None) -> int:
    """Run `vtk train TRAIN_ARGS` in `nproc` local workers through torch.distributed.run; its exit code.
    torchrun's log folder (by default a `torchelastic_*` folder it leaves in the temp folder) is one of ours,
    removed when the job ends however it ends."""
    logs = tempfile.mkdtemp(prefix="vtk-torchrun-")
    try:
        return _run_agent(train_args, nproc, nnodes, rdzv_endpoint, max_restarts, rdzv_id, logs)
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def _run_agent(train_args: list[str], nproc: int, nnodes: str, rdzv_endpoint: str | None, max_restarts: int,
               rdzv_id: str | None, logs: str) -> int:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
           f"--max-restarts={max_restarts}", f"--log-dir={logs}"]
    if rdzv_endpoint is None and nnodes == "1":
        cmd.append("--standalone")
    else:
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
        if rdzv_id:
            cmd.append(f"--rdzv-id={rdzv_id}")
    cmd += ["-m", "vtk_vision.cli", "train", *train_args]
    # its own session: a terminal's Ctrl-C reaches this launcher only, which passes it on once
    agent = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
                             env=os.environ | {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    try:
        _relay(agent.stderr)
        return agent.wait()
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP to this launcher: the workers get the same signal
        agent.send_signal(getattr(e, "signum", signal.SIGINT))  # from torchrun, and save their run
        _relay(agent.stderr)
        agent.wait()
        raise


def _relay(stream) -> None:
    """The workers' lines to stderr. torchrun's own traceback (ending in its ChildFailedError or
    SignalException), its failure report and its INFO/WARNING/ERROR log lines only repeat that a worker stopped,
    and are left out; from the report, a worker killed by a signal is said in one line. Any other traceback,
    a worker's before its `[rankN]:` prefix exists included, is passed on whole."""
    report: list[str] | None = None
    traceback: list[str] | None = None
    said: set[str] = set()  # each rank meets the same bad option: its one-line error is said once
    for line in stream:
        if line.startswith("Error: "):
            if line not in said:
                sys.stderr.write(line)
            said.add(line)
            continue
        if report is not None:
            report.append(line)
            if line.startswith("=" * 20) and len(report) > 1:
                for row in report:
                    if "exitcode" in row and "Signal" in row:
                        sys.stderr.write(f"torchrun: a worker was stopped: {row.split(':', 1)[1].strip()}\n")
                report = None
            continue
        if traceback is not None:
            traceback.append(line)
            if not line[:1].isspace() and not line.startswith("Traceback"):  # the exception line ends it
                if not line.startswith("torch.distributed.elastic"):
                    sys.stderr.writelines(traceback)
                traceback = None
            continue
        if line.startswith("=" * 20):
            report = [line]
        elif line.startswith("Traceback (most recent call last)"):
            traceback = [line]
        elif not (line[:1] in "IWE" and "torch/distributed/elastic/" in line):
            sys.stderr.write(line)
    sys.stderr.writelines((report or []) + (traceback or []))
