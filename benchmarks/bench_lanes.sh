#!/usr/bin/env bash
# Two trainings in a row with every thread, against the same two side by side with one thread each (the
# lanes of `make demo`): wall seconds and their ratio, on the embedded demo corpus (synthesized on first use
# under <output_root>). Run it alone: anything else on the cores skews both. Usage:
#   bash benchmarks/bench_lanes.sh [output_root] [epochs]     (default: results_lanes 2)
# Writes <output_root>/lanes.md (and prints it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-results_lanes}; epochs=${2:-2}
PY=${PY:-.venv/bin/python}
cores=$(nproc)
train() {  # model experiment_name threads
    OMP_NUM_THREADS=$3 $PY recipes/TIMIT/train_fdnf.py hparams/$1.yaml --output_root="$root" --experiment_name="$2" \
        --number_of_epochs="$epochs" > "$root/$2.log" 2>&1
}
mkdir -p "$root"
train nf warmup "$cores"  # synthesis and preparation, once, outside the timings
start=$(date +%s.%N)
train fdnf serial_fdnf "$cores"; train nf serial_nf "$cores"
serial=$($PY -c "print($(date +%s.%N) - $start)")
start=$(date +%s.%N)
train fdnf lanes_fdnf 1 & train nf lanes_nf 1 & wait
lanes=$($PY -c "print($(date +%s.%N) - $start)")
{
    echo "# Two trainings (f-DNF and NF, $epochs epochs each, the demo corpus): in a row with $cores threads, side by side with 1 each"
    echo
    echo "| how | wall seconds |"
    echo "|---|---|"
    printf '| in a row, %d threads each | %.1f |\n' "$cores" "$serial"
    printf '| side by side, 1 thread each (make demo'"'"'s lanes) | %.1f |\n' "$lanes"
    printf '\nratio side by side / in a row: %.2f\n' "$($PY -c "print($lanes / $serial)")"
} | tee "$root/lanes.md"
