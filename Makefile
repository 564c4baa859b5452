# The README's two commands: `make survey` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
# onnxruntime (extra `cpu`) and onnxruntime-gpu (extra `gpu`) overwrite each other:
# install exactly one. EXTRAS=gpu,train,tf-gpu,test on a CUDA machine.
EXTRAS ?= cpu,train,tf-cpu,test
comma  := ,
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

export RAY_AUTH_MODE ?= disabled

.PHONY: venv survey test test-fast inspect bench check-constraints clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# The main job on its embedded default: a demo scan of a small region of the MOCK sky
# with the shipped model (local Ray, CPU), written to ./halo-survey-out/ (replacing an
# earlier demo run there).
survey: venv
	$(BIN)/halo-survey scan --overwrite

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow and not training"

# Does constraints.txt still resolve for both container images? (Needs the package index;
# installs nothing.)
check-constraints: venv
	$(BIN)/python -m pip install -q --dry-run -c constraints.txt '.[cpu,cloud]' 'ray[default]'
	$(BIN)/python -m pip install -q --dry-run -c constraints.txt '.[gpu,cloud]' 'ray[default]'

clean:
	rm -rf $(VENV) halo-survey-out .pytest_cache
