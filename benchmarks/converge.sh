#!/usr/bin/env bash
# Converged training of the paper's five models on the demo corpus, one after another (two trainings at
# once thrash two cores), timed; each run also exports its model after epochs 6, 20 and 60 (the training
# curve of hparams/experiments/evaluate_converged.yaml). Usage:
#   bash benchmarks/converge.sh [output_root] [extra recipe arguments, e.g. --device=cuda:0]
# Writes <output_root>/converge_times.md: seconds, epochs trained, the best epoch and why each run stopped.
set -uo pipefail
cd "$(dirname "$0")/.."
root=${1:-results_converged}; shift || true
PY=${PY:-.venv/bin/python}
mkdir -p "$root"
out=$root/converge_times.md
[ -f "$out" ] || printf '| model | seconds | epochs | stopped |\n|---|---|---|---|\n' > "$out"
for model in nf vae fdnf dnf_phone dnf_speaker; do
    start=$(date +%s)
    $PY recipes/TIMIT/train_fdnf.py hparams/$model.yaml --output_root="$root" --snapshot_epochs=[6,20,60] "$@" \
        > "$root/$model.log" 2>&1 || { echo "$model failed: see $root/$model.log"; exit 1; }
    log=$root/$model/1234/train_log.txt
    epochs=$(grep -c '^epoch:' "$log")
    stopped=$(grep '^stopped:' "$log" | tail -1 | cut -d' ' -f2-)
    echo "| $model | $(( $(date +%s) - start )) | $epochs | $stopped |" | tee -a "$out"
done
