#!/usr/bin/env bash
# Converged training of the paper's five models on the demo corpus, one after another, timed (two of these
# scripts at once thrash two cores unless each has OMP_NUM_THREADS=1: then two lanes take half the time); each run also exports its model after epochs 6, 20 and 60 (the training
# curve of hparams/experiments/evaluate_converged.yaml). Usage:
#   bash benchmarks/converge.sh [output_root] [extra recipe arguments, e.g. --device=cuda:0]
# MODELS="fdnf dnf_phone" picks and orders the models (default: all five); SEED=1 another seed (default 1234).
# Writes <output_root>/converge_times.md: seconds, epochs trained, the best epoch and why each run stopped (a run
# resumed from a checkpoint, e.g. with a higher cap, counts the seconds of the resumed epochs only).
set -uo pipefail
cd "$(dirname "$0")/.."
root=${1:-results_converged}; shift || true
PY=${PY:-.venv/bin/python}
mkdir -p "$root"
out=$root/converge_times.md
seed=${SEED:-1234}
[ -f "$out" ] || printf '| model | seed | seconds | epochs | stopped |\n|---|---|---|---|---|\n' > "$out"
for model in ${MODELS:-nf vae fdnf dnf_phone dnf_speaker}; do
    start=$(date +%s)
    $PY recipes/TIMIT/train_fdnf.py hparams/$model.yaml --output_root="$root" --snapshot_epochs=[6,20,60] --seed="$seed" "$@" \
        > "$root/$model.$seed.log" 2>&1 || { echo "$model failed: see $root/$model.$seed.log"; exit 1; }
    log=$root/$model/$seed/train_log.txt
    epochs=$(grep -c '^epoch:' "$log")
    stopped=$(grep '^stopped:' "$log" | tail -1 | cut -d' ' -f2-)
    echo "| $model | $seed | $(( $(date +%s) - start )) | $epochs | $stopped |" | tee -a "$out"
done
