# speechbrain-fdnf: `make demo` and `make test` are the two commands; both install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Versions known to install and import together here (torch's CUDA wheel also runs on CPU).
PINS := torch==2.14.1 torchaudio==2.11.0 speechbrain==1.1.2

.PHONY: install test test-fast demo demo-phone-judge reuse bench gpu-check clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PINS)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

# The whole suite, slow tests included (that is what CI runs).
test: install
	$(PY) -m pytest

# Skips tests marked slow, for a quick loop while editing.
test-fast: install
	$(PY) -m pytest -m "not slow"

# The five models of the paper on the embedded corpus (synthesized on first use), with demo-sized
# training, then the evaluation and two reuses; DEMO_ARGS takes any yaml override. The VAE trains first
# (it synthesizes and prepares the corpus), then the four flows and the conversion section's phone judge
# DEMO_LANES at a time, each with its share of the cores: these small matrix products gain little from a
# second thread, so two one-thread trainings side by side take 0.7-0.8 of the time of two in a row with
# both threads (benchmarks/latest_lanes.md; the demo's flows: 2.6 min a pair against 3.7).
# The judge, the longest job, starts first: last, it would train alone beside an idle core.
# (The f-DNF with paired frames is in docs/RESULTS.md: its training would push the demo past 10 minutes.)
# Then the f-DNF's contextual phone tagger trains alone with every thread (in a lane, one thread, it ended 71 s
# later): with it in the model folder the converter's default given audio of the target is `units`
# (docs/RESULTS.md 6g).
FLOWS := fdnf dnf_speaker nf dnf_phone
# DEMO_TAGGER=0 leaves it out: about 5 minutes less, and the converter's default given audio is then `cells`.
DEMO_TAGGER ?= 1
# the recipe's own tagger (10 epochs; 6 before its LSTM trained on padded batches, four times as fast: RESULTS 6zh)
TAGGER_ARGS ?=
# the demo's conversion: the first held-out utterance, to the first training speaker of the other gender
# (then three of that speaker's training utterances: the default conversion from audio, `units` with the tagger)
export DEMO_PAIR := import json; h = json.load(open("results/prepared/heldout.json")); e = h[sorted(h)[0]]; \
	s = sorted({v["speaker"] for v in h.values() if v["gender"] != e["gender"]})[0]; \
	t = json.load(open("results/prepared/train.json")); \
	print(e["wav"], s, *sorted(v["wav"] for v in t.values() if v["speaker"] == s)[:3])
DEMO_ARGS ?= --number_of_epochs=6
DEMO_LANES ?= 2
LANE_THREADS = $(shell n=$$(( $$(nproc) / $(DEMO_LANES) )); echo $$(( n > 0 ? n : 1 )))
demo: install
	@start=$$(date +%s); \
	echo "== training vae (and building the embedded corpus on first use)"; \
	$(PY) recipes/TIMIT/train_fdnf.py hparams/vae.yaml $(DEMO_ARGS) || exit 1; \
	echo "== training $(FLOWS) and the phone judge, $(DEMO_LANES) at a time ($(LANE_THREADS) thread(s) each)"; \
	$(MAKE) --no-print-directory -j$(DEMO_LANES) demo-phone-judge $(addprefix demo-train-,$(FLOWS)) || exit 1; \
	if [ "$(DEMO_TAGGER)" = 1 ]; then \
		echo "== training the f-DNF's contextual phone tagger"; \
		$(PY) recipes/TIMIT/train_tagger.py hparams/phone_tagger.yaml $(TAGGER_ARGS) > results/phone_tagger.demo.log 2>&1 \
			|| { echo "training the phone tagger failed: see results/phone_tagger.demo.log"; exit 1; }; \
		echo "trained it: results/phone_tagger/results.md (its frame accuracy)"; \
	fi; \
	echo "== evaluating"; \
	$(PY) recipes/TIMIT/evaluate.py hparams/evaluate.yaml || exit 1; \
	echo "== reusing the f-DNF: speaker identification and a conversion"; \
	$(PY) recipes/TIMIT/speaker_id.py hparams/speaker_id.yaml || exit 1; \
	set -- $$($(PY) -c "$$DEMO_PAIR"); \
	$(PY) -m speechbrain_fdnf.convert --model results/fdnf/1234/inference --speaker $$2 --wav $$1 \
		--out results/demo_conversion.wav || exit 1; \
	echo "converted $$1 to speaker $$2 (the paper's shift; the source's pitch kept): results/demo_conversion.wav"; \
	$(PY) -m speechbrain_fdnf.convert --model results/fdnf/1234/inference --wav $$1 --enrol $$3 $$4 $$5 \
		--out results/demo_conversion_enrolled.wav || exit 1; \
	echo "converted it from three utterances of $$2 (the default given audio: units with the tagger, each phone one rendition by the voice; cells without one): results/demo_conversion_enrolled.wav"; \
	echo "== demo finished in $$(( $$(date +%s) - start )) s"; \
	echo "training logs: results/<model>/1234/train_log.txt"; \
	echo "report: results/evaluation/results.md (tables), results/evaluation/tsne.png (figure), results/evaluation/conversions/index.html (judged conversions, to listen)"; \
	echo "inference folders: results/<model>/1234/inference; speaker ID: results/speaker_id.md; audio: results/demo_conversion.wav, results/demo_conversion_enrolled.wav"

# one lane's job of the demo (the console output of each goes to results/<job>.demo.log)
demo-train-%:
	@OMP_NUM_THREADS=$(LANE_THREADS) $(PY) recipes/TIMIT/train_fdnf.py hparams/$*.yaml $(DEMO_ARGS) \
		> results/$*.demo.log 2>&1 || { echo "training $* failed: see results/$*.demo.log"; exit 1; }
	@echo "trained $*: $$(grep '^stopped:' results/$*/1234/train_log.txt | tail -n 1)"
demo-phone-judge:
	@OMP_NUM_THREADS=$(LANE_THREADS) $(PY) recipes/TIMIT/evaluate.py hparams/evaluate.yaml --train_only=True \
		--train_missing=False > results/phone_judge.demo.log 2>&1 \
		|| { echo "training the phone judge failed: see results/phone_judge.demo.log"; exit 1; }
	@echo "trained the phone judge (results/phone_recognition)"

# The CUDA path end to end in a few minutes (five models one epoch each on the small corpus, the tagger,
# every evaluation section, the converter), timed per stage: run it first when a GPU is lent.
gpu-check: install
	DEVICE=$${DEVICE:-cuda:0} bash benchmarks/gpu_check.sh results_gpu_check

# Reuse of the demo's models in two SpeechBrain recipes, on the test speakers (run after `make demo`):
# CTC phone recognition on four feature sets, speaker verification with four embeddings.
reuse: install
	$(PY) recipes/TIMIT/phone_recognition.py hparams/phone_recognition.yaml
	$(PY) recipes/TIMIT/speaker_verification.py hparams/speaker_verification.yaml

# Our flow against zuko and nflows (benchmark-only extras), same machine, same frames; then how the
# evaluation's time grows with the number of frames.
# BENCH_ARGS: e.g. --device cuda, --data real, --batch-sizes 1024.
BENCH_ARGS ?=
bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_flows.py --out benchmarks/latest_cpu.md $(BENCH_ARGS)
	$(PY) benchmarks/bench_flows.py --models ours-spline zuko-nsf nflows-nsf ours-spline-bf16 zuko-nsf-bf16 \
		nflows-nsf-bf16 --ours ours-spline ours-spline-bf16 --peers zuko-nsf nflows-nsf zuko-nsf-bf16 nflows-nsf-bf16 \
		--out benchmarks/latest_cpu_spline.md $(BENCH_ARGS)
	$(PY) benchmarks/bench_flows.py --models ours-default nflows-default nflows ours-default-bf16 nflows-bf16 \
		nflows-default-bf16 --ours ours-default ours-default-bf16 \
		--peers nflows-default nflows nflows-bf16 nflows-default-bf16 --out benchmarks/latest_cpu_default.md $(BENCH_ARGS)
	$(PY) benchmarks/bench_evaluation.py --train-frames 50000 100000 200000 400000 \
		--out benchmarks/latest_evaluation.md

clean:
	rm -rf $(VENV) results corpora .pytest_cache
