#!/usr/bin/env bash
# Train on a lent GPU machine and print a short table. The wheels the machine lacks (.whl: hydra-core,
# omegaconf, antlr4, captum, kornia(-rs), mlflow-skinny and its needs) and the FER2013 npz (.data, 52 MiB)
# do not fit in one call's 64 MiB together, so a warm machine gets them in two calls:
#   1. carry [".whl"]:  bash scripts/device_run.sh --install     (installs into .site, runs a GPU smoke test)
#   2. carry [".data"]: bash scripts/device_run.sh [fer.train overrides …]
# Both .site and .data are git-ignored, so the machine keeps them between calls while it stays warm.
set -euo pipefail
export PYTHONPATH=$PWD/.site:$PWD PYTHONUNBUFFERED=1 MLFLOW_ALLOW_FILE_STORE=true
store="file://$PWD/mlruns_gpu"
common=(trainer=gpu trainer.progress_bar=false tracking.uri="$store" tracking.artifact_root=null)
if [ "${1:-}" = "--install" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .site .whl/*.whl
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 -m fer.train "${common[@]}" tracking.experiment=smoke data.n_train=2048 trainer.max_epochs=2 model=vgg16
  exit
fi
[ -d .site ] || { echo "no .site: run with --install first (the machine was given back?)"; exit 3; }
npz=.data/fer2013_trainval.npz
[ -f "$npz" ] || { echo "no $npz: carry .data"; exit 3; }
start=$(date +%s)
python3 -m fer.train data=fer2013 data.path="$npz" "${common[@]}" "$@"
echo "wall_s $(( $(date +%s) - start ))"
python3 - "$store" <<'PY'
import sys
from mlflow.tracking import MlflowClient
c = MlflowClient(sys.argv[1])
print("| experiment | run | epochs | run s | best val_acc | test_public_acc | test_acc |")
print("|---|---|---:|---:|---:|---:|---:|")
for exp in c.search_experiments():
    for r in c.search_runs([exp.experiment_id]):
        m = r.data.metrics
        hist = c.get_metric_history(r.info.run_id, "val_acc")
        secs = (r.info.end_time - r.info.start_time) / 1000 if r.info.end_time else float("nan")
        best = max((h.value for h in hist), default=float("nan"))
        print(f"| {exp.name} | {r.info.run_name} | {len(hist)} | {secs:.0f} | {best:.4f} | "
              f"{m.get('test_public_acc', float('nan')):.4f} | {m.get('test_acc', float('nan')):.4f} |")
PY
