#!/usr/bin/env bash
# Each death caused for real, then resumed: SIGTERM and kill -9 from the shell, Ctrl-C as SIGINT from a Python
# parent, kill -9 of one data-parallel worker under torchrun --max-restarts. Run from a clone's root after
# the README install: bash scripts/demo_deaths.sh (about 3 minutes on 2 cores; writes death-*/ folders).
set -u
export VTK_DATA_DIR="$PWD/../shared/datasets" VTK_RUNS_DIR="$PWD/death-runs"
rm -rf "$VTK_RUNS_DIR"
vtk=.venv/bin/vtk
R=$VTK_RUNS_DIR/lenet5-fashion-mnist-1
epochs() { python3 -c "import json;print(len(json.load(open('$R/run.json'))['history']))" 2>/dev/null || echo 0; }
wait_epoch() { while [ "$(epochs)" -lt "$1" ]; do sleep 0.1; done; }
echo "== 1. SIGTERM from the shell (kill -TERM) during epoch 2"
$vtk train lenet5 --epochs 10 & pid=$!; wait_epoch 1; kill -TERM $pid; wait $pid; echo "exit $?"
$vtk runs
echo "== 2. kill -9 from the shell while the resumed run trains"
$vtk train --resume $R & pid=$!; wait_epoch 4; kill -9 $pid; wait $pid 2>/dev/null; echo "exit $?"
$vtk runs
$vtk export $R; echo "export exit $?"
echo "== 3. Ctrl-C as SIGINT from a Python parent"
.venv/bin/python - "$R" <<'PY'
import json, signal, subprocess, sys, time
run = sys.argv[1]
n = lambda: len(json.load(open(f"{run}/run.json"))["history"])
before = n()
p = subprocess.Popen([".venv/bin/vtk", "train", "--resume", run], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a foreground job has it
while n() <= before: time.sleep(0.05)
p.send_signal(signal.SIGINT); p.wait(); print("exit", p.returncode)
PY
$vtk runs
echo "== 4. resume to the end"
$vtk train --resume $R; echo "exit $?"
$vtk runs
echo "== 5. the same run uninterrupted, for the weights"
VTK_RUNS_DIR=$PWD/death-ref $vtk train lenet5 --epochs 10 | tail -1
.venv/bin/python -c "
from safetensors.torch import load_file; import torch, glob
a = load_file('$R/model.safetensors'); b = load_file(glob.glob('$PWD/death-ref/*/model.safetensors')[0])
print('identical weights:', all(torch.equal(a[k], b[k]) for k in a))"
echo "== 6. 2-process gloo: kill -9 one worker, torchrun restarts, the run resumes"
export VTK_RUNS_DIR=$PWD/death-ddp; rm -rf $VTK_RUNS_DIR; R=$VTK_RUNS_DIR/lenet5-fashion-mnist-1
$vtk train lenet5 --epochs 4 --nproc 2 --max-restarts 1 & pid=$!; wait_epoch 1
w=$(pgrep -f "vtk_vision.cli train" | sort -n | tail -1); kill -9 $w; wait $pid; echo "exit $?"
$vtk runs
python3 -c "import json; d=json.load(open('$R/run.json')); print(d['status'], [h['epoch'] for h in d['history']], d['distributed'])"
