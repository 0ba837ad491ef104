#!/usr/bin/env bash
# The standing GPU measurement in one call on a lent GPU machine: install the packages the machine lacks, time
# the input pipelines (python -m fer.bench experiment=sota: VGG16, batch 512, strong aug, bf16, compiled),
# train experiment=sota on FER2013 (and with FER_EXPERIMENTS="sota ferplus_sota" FER+ too, from the labels in
# .data), and print one table (bench rows, PublicTest accuracy, wall time, epochs).
#
# What travels is 64 MiB at most: the FER2013 npz (51 MiB) leaves too little for the wheels as wheels
# (17 MiB), so they go unpacked into one xz tarball (11 MiB) beside the npz in .data/ (git-ignored):
#   here, once:      bash scripts/device_run.sh --pack        (needs .whl/*.whl for cp312; about 2 minutes)
#   device, 1 call:  carry [".data"], timeout_s 600:  bash scripts/device_run.sh [fer.train overrides …]
# The results also land in $OUT (bench.json, train.log, summary.md) when the device tool sets it.
set -euo pipefail
site_tar=.data/site-py312.tar.xz
npz=.data/fer2013_trainval.npz
labels=.data/fer2013new.csv

if [ "${1:-}" = "--pack" ]; then
  mkdir -p .data
  [ -f "$npz" ] || cp "${FER_NPZ:-/work/shared/data/fer2013_trainval.npz}" "$npz"
  [ -f "$labels" ] || cp "${FER_LABELS:-/work/shared/data/ferplus/fer2013new.csv}" "$labels"
  python3 - "$site_tar" <<'PY'
import lzma, sys, tarfile, tempfile, zipfile
from pathlib import Path
wheels = sorted(Path(".whl").glob("*.whl"))
assert wheels, "no .whl/*.whl to pack"
with tempfile.TemporaryDirectory() as tmp:
    for w in wheels:  # a wheel is a zip of site-packages entries: unzipped, it is installed
        zipfile.ZipFile(w).extractall(tmp)
    with tarfile.open(sys.argv[1], "w:xz", preset=9 | lzma.PRESET_EXTREME) as tar:
        for entry in sorted(Path(tmp).iterdir()):
            tar.add(entry, arcname=entry.name)
print(f"packed {len(wheels)} wheels into {sys.argv[1]}")
PY
  tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  data=$(du -cb .data | tail -1 | cut -f1)
  total=$((tree + data))
  echo "travels: working tree $tree + .data $data = $total bytes (limit $((64 * 1024 * 1024)))"
  [ "$total" -le $((64 * 1024 * 1024)) ] || { echo "over 64 MiB: the device call would be refused"; exit 3; }
  exit
fi

[ -f "$site_tar" ] && [ -f "$npz" ] || { echo "no $site_tar or $npz: run --pack here and carry .data"; exit 3; }
out=${OUT:-outputs/device}
mkdir -p "$out" .site
[ -f .site/.unpacked ] || { python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('.site')" \
  "$site_tar" && touch .site/.unpacked; }
# fer runs from this checkout, not installed: its configs are the package fer.conf, which an install maps to conf/
[ -e fer/conf ] || ln -s ../conf fer/conf
export PYTHONPATH=$PWD/.site:$PWD PYTHONUNBUFFERED=1 MLFLOW_ALLOW_FILE_STORE=true
store="file://$PWD/mlruns_gpu"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"

start=$(date +%s)
python3 -m fer.bench experiment=sota "bench.pipelines=[bare,fer,fer_kornia,conventional]" \
  bench.output="$out/bench.json" 2>&1 | tee "$out/bench.log" || echo "fer.bench failed: training anyway"
echo "bench wall_s $(( $(date +%s) - start ))"

experiments=${FER_EXPERIMENTS:-sota}
walls=""
for experiment in $experiments; do
  start=$(date +%s)
  extra=()
  [ "$experiment" = sota ] || extra=(data.labels="$labels")
  python3 -m fer.train experiment="$experiment" data.path="$npz" "${extra[@]}" trainer.progress_bar=false \
    tracking.uri="$store" tracking.artifact_root=null "$@" 2>&1 | tee "$out/train-$experiment.log"
  walls="$walls $experiment=$(( $(date +%s) - start ))"
done

python3 - "$store" "$out/bench.json" $walls <<'PY' | tee "$out/summary.md"
import json, sys
from pathlib import Path
from mlflow.tracking import MlflowClient
store, bench_path = sys.argv[1], Path(sys.argv[2])
walls = dict(arg.split("=") for arg in sys.argv[3:])
if bench_path.exists():
    b = json.loads(bench_path.read_text())
    print(f"bench: {b['model']}, batch {b['batch_size']}, aug {b['aug']} ({b['aug_impl']}), {b['precision']}, "
          f"compile {b['compile']}, on {b['device']}; {b['train_flops_per_image'] / 1e9:.2f} GFLOP/image; "
          f"matmul ceiling {b['matmul_ceiling_flops'] / 1e12:.0f} TFLOP/s ({b['matmul_ceiling_dtype']})")
    print("| pipeline | images/s | s per FER2013 epoch | of ceiling |\n|---|---:|---:|---:|")
    for r in b["rows"]:
        print(f"| {r['pipeline']} | {r['images_per_s']:,.0f} | {r['s_per_fer2013_epoch']:.3f} | "
              f"{r['fraction_of_ceiling']:.1%} |")
c = MlflowClient(store)
print("\n| experiment | run | status | epochs | best val_acc (PublicTest, EMA) | test_public_acc (ten-crop) "
      "| test_public_any_vote_acc | run s | wall s |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|")
for name, wall in walls.items():
    exp = c.get_experiment_by_name(name)
    runs = c.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1) if exp else []
    if not runs:
        print(f"| {name} | no run | | | | | | | {wall} |")
        continue
    r = runs[0]
    m, hist = r.data.metrics, c.get_metric_history(r.info.run_id, "val_acc")
    secs = (r.info.end_time - r.info.start_time) / 1000 if r.info.end_time else float("nan")
    best = max((h.value for h in hist), default=float("nan"))
    print(f"| {name} | {r.info.run_name} | {r.info.status} | {len(hist)} | {best:.4f} | "
          f"{m.get('test_public_acc', float('nan')):.4f} | {m.get('test_public_any_vote_acc', float('nan')):.4f} | "
          f"{secs:.0f} | {wall} |")
PY
