#!/usr/bin/env bash
# The corpus-knob search of issue 33 (hparams/experiments/choose_corpus.yaml gives the rule): one demo-size
# corpus per candidate, the VAE and the NF trained on it for 6 epochs, scored on the VALID split over the
# paper's 40 speakers. Candidates run one after another (two trainings at once thrash two cores).
# Usage: bash benchmarks/choose_corpus.sh [root] [candidate names...]   (default: the three run for issue 33)
# Each candidate's report: <root>/<name>/evaluation_valid/results.md; times in <root>/times.md.
set -uo pipefail
cd "$(dirname "$0")/.."
root=${1:-results_choice}; shift || true
PY=${PY:-.venv/bin/python}
# name -> embedded_corpus_options (TIMIT's closure labels in every candidate: the rebuilt corpus has them)
declare -A CANDIDATES=(
    [current]="{timit_closures: true}"
    [spread07_colour6]="{timit_closures: true, voice_spread: 0.7, voice_colour: 6.0}"
    [spread05_colour9]="{timit_closures: true, voice_spread: 0.5, voice_colour: 9.0}"
    [spread05_colour12]="{timit_closures: true, voice_spread: 0.5, voice_colour: 12.0}"
    [spread025_colour12]="{timit_closures: true, voice_spread: 0.25, voice_colour: 12.0}"
    # (added after the first two: less spread made phones easier, p(q|x) 0.636; more per-word variation
    # within each speaker makes them harder again without a per-speaker, per-phone difference)
    [spread07_colour6_token15]="{timit_closures: true, voice_spread: 0.7, voice_colour: 6.0, token_variation: 1.5}"
    # (added in a later session, the rule unchanged: eSpeak plays every voice's fricatives and bursts from the
    # same recordings, so those frames carried no speaker evidence; each speaker now shapes its own)
    [noise1]="{timit_closures: true, noise_shape: 1.0}"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(current spread07_colour6 spread07_colour6_token15)
mkdir -p "$root"
[ -f "$root/times.md" ] || printf '| candidate | corpus options | seconds |\n|---|---|---|\n' > "$root/times.md"
for name in "${names[@]}"; do
    options=${CANDIDATES[$name]:?unknown candidate $name}
    start=$(date +%s)
    $PY recipes/TIMIT/evaluate.py hparams/experiments/choose_corpus.yaml --output_root="$root/$name" \
        --data_overrides="{embedded_corpus_options: $options}" > "$root/$name.log" 2>&1 \
        || { echo "$name failed: see $root/$name.log"; exit 1; }
    echo "| $name | \`$options\` | $(( $(date +%s) - start )) |" | tee -a "$root/times.md"
done
