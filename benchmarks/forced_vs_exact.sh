#!/usr/bin/env bash
# The f-DNF trained on forced alignments against the same f-DNF trained on exact phone boundaries:
# the demo corpus in LibriSpeech's layout (transcripts only; eSpeak NG's exact boundaries as TextGrids
# in exact_alignments/), the demo's training, the paper's tables, three seeds.
#   bash benchmarks/forced_vs_exact.sh [CORPUS_ROOT] [OUT]
# CORPUS_ROOT is made by `python -m speechbrain_fdnf.data.synthesize CORPUS_ROOT --layout librispeech`
# when missing. Reports: OUT/{forced,exact}/evaluation/results.md; preparation time in OUT/*.log.
set -euo pipefail
PY=${PY:-.venv/bin/python}
CORPUS=${1:-results/embedded_corpus_demo_librispeech}
OUT=${2:-results/forced_vs_exact}
mkdir -p "$OUT"
[ -f "$CORPUS/corpus.json" ] || $PY -m speechbrain_fdnf.data.synthesize "$CORPUS" --layout librispeech
for labels in forced exact; do
  extra=""
  [ "$labels" = exact ] && extra=", alignments: $CORPUS/exact_alignments"
  start=$(date +%s)
  $PY recipes/TIMIT/evaluate.py hparams/experiments/forced_vs_exact.yaml --output_root="$OUT/$labels" \
    --data_overrides="{corpus: librispeech, data_folder: $CORPUS$extra}" > "$OUT/$labels.log" 2>&1
  echo "$labels: $(( $(date +%s) - start )) s (preparation, training three seeds, evaluation)" | tee -a "$OUT/times.txt"
done
