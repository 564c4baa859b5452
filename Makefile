# The README's two commands: `make survey` and `make test`. Both set up .venv first.
#
# `make survey` installs the survey runtime only (ONNX Runtime, Ray, the HATS writer: no
# TensorFlow); `make test` adds training (TensorFlow) and the test tools to the same venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
# onnxruntime (extra `cpu`) and onnxruntime-gpu (extra `gpu`) overwrite each other: install
# exactly one. On a CUDA machine: SURVEY_EXTRAS=gpu TEST_EXTRAS=train,tf-gpu,test,deploy.
SURVEY_EXTRAS ?= cpu
TEST_EXTRAS   ?= train,tf-cpu,test,deploy
comma  := ,
SURVEY_STAMP := $(VENV)/.installed-$(subst $(comma),-,$(SURVEY_EXTRAS))
TEST_STAMP   := $(VENV)/.installed-$(subst $(comma),-,$(SURVEY_EXTRAS),$(TEST_EXTRAS))
PIP := $(BIN)/python -m pip install -q -c constraints.txt

export RAY_AUTH_MODE ?= disabled

.PHONY: venv venv-survey venv-test survey test test-fast containers check-constraints clean

venv: venv-test
venv-survey: $(SURVEY_STAMP)
venv-test: $(TEST_STAMP)

$(SURVEY_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(PIP) -e '.[$(SURVEY_EXTRAS)]'
	@touch $@

$(TEST_STAMP): $(SURVEY_STAMP)
	$(PIP) -e '.[$(SURVEY_EXTRAS),$(TEST_EXTRAS)]'
	@touch $@

# The main job on its embedded default: a demo scan of a small region of the MOCK sky
# with the shipped model (local Ray, CPU), written to ./halo-survey-out/ (replacing an
# earlier demo run there).
survey: venv-survey
	$(BIN)/halo-survey scan --overwrite

test: venv-test
	$(BIN)/python -m pytest -q

test-fast: venv-test
	$(BIN)/python -m pytest -q -m "not slow and not training and not containers"

# The container images built with podman on a local Debian base (containers/README.md).
containers:
	bash containers/build.sh cpu gpu

# Does constraints.txt still resolve for both container images? (Needs the package index;
# installs nothing.)
check-constraints: venv-survey
	$(PIP) --dry-run '.[cpu,cloud]' 'ray[default]'
	$(PIP) --dry-run '.[gpu,cloud]' 'ray[default]' 'onnxruntime-gpu[cuda,cudnn]'

clean:
	rm -rf $(VENV) halo-survey-out .pytest_cache
