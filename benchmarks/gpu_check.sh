#!/usr/bin/env bash
# The CUDA path end to end, timed stage by stage, in a few minutes: the five models one epoch each on the
# small embedded corpus, the phone tagger, the flow's and the converter's exactness against the CPU
# (benchmarks/gpu_exactness.py), every evaluation section (conversion through gain and WORLD, DNSMOS included) and
# the command-line converter, all on DEVICE. Run it first when a GPU is lent, before
# any long run on it; DEVICE=cpu runs the same path on the CPU (benchmarks/latest_gpu_check_cpu.md).
# Usage: DEVICE=cuda:0 bash benchmarks/gpu_check.sh [output_root]     (or: make gpu-check)
# Writes <output_root>/gpu_check_times.md; stops at the first failing stage and names its log.
set -uo pipefail
cd "$(dirname "$0")/.."
root=${1:-results_gpu_check}
DEVICE=${DEVICE:-cuda:0}
PY=${PY:-.venv/bin/python}
mkdir -p "$root"
times=$root/gpu_check_times.md
small=(--output_root="$root" --embedded_corpus_size=small --device="$DEVICE")

stage() {  # stage NAME command...: runs it, logs to <root>/NAME.log, appends its seconds to the table
    local name=$1 start end
    shift
    start=$(date +%s%N)
    if ! "$@" > "$root/$name.log" 2>&1; then
        echo "FAILED: $name on $DEVICE (log: $root/$name.log)"; tail -n 20 "$root/$name.log"; exit 1
    fi
    end=$(date +%s%N)
    printf '| %s | %d.%02d |\n' "$name" $(( (end - start) / 1000000000 )) $(( (end - start) / 10000000 % 100 )) | tee -a "$times"
}

printf '| stage (%s) | seconds |\n|---|---|\n' "$DEVICE" > "$times"
stage device "$PY" -c "
import sys, torch
device = torch.device('$DEVICE')
if device.type == 'cuda' and not torch.cuda.is_available():
    sys.exit('DEVICE=$DEVICE but torch sees no CUDA device')
print(torch.__version__, torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu')"
for model in fdnf nf dnf_phone dnf_speaker vae; do
    stage "train $model" "$PY" recipes/TIMIT/train_fdnf.py "hparams/$model.yaml" "${small[@]}" --number_of_epochs=1
done
stage "train tagger" "$PY" recipes/TIMIT/train_tagger.py hparams/phone_tagger.yaml --output_root="$root" --device="$DEVICE" \
    --number_of_epochs=1
stage "exactness (against the CPU)" "$PY" benchmarks/gpu_exactness.py --model "$root/fdnf/1234/inference" \
    --prepared "$root/prepared" --device "$DEVICE" --out "$root/gpu_exactness.md"
stage "evaluate (every section)" "$PY" recipes/TIMIT/evaluate.py hparams/evaluate.yaml --output_root="$root" \
    --device="$DEVICE" --data_overrides="{embedded_corpus_size: small}" --train_missing=False \
    --knn_gates="[window, decoded]" --conversion_methods="[gain, world]" --phone_recognizer_overrides="{number_of_epochs: 1}" \
    --probe_epochs=1 --num_frames=300 --tsne_per_class=10 --leakage_max_train=2000 --table_speakers=3 \
    --utterance_tables=4 --conversion_utterances=2
pair=$("$PY" -c "
import json
heldout = json.load(open('$root/prepared/heldout.json'))
entry = heldout[sorted(heldout)[0]]
print(entry['wav'], sorted({v['speaker'] for v in heldout.values() if v['gender'] != entry['gender']})[0])")
set -- $pair
stage "convert (command line)" "$PY" -m speechbrain_fdnf.convert --model "$root/fdnf/1234/inference" --speaker "$2" \
    --wav "$1" --out "$root/conversion.wav" --device "$DEVICE"
echo "the whole path ran on $DEVICE: $times"
