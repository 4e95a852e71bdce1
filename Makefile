# Two environments: .venv (newest releases) and .venvs/colab (Google Colab's pins,
# course/constraints/colab.txt). Every unit must grade full marks in both.
PYTHON ?= python3
VENV   := .venv
COLAB  := .venvs/colab
# Colab runs Python 3.13: the Colab-pins environment is built on a python3.13 from PATH, else from pyenv.
COLAB_PYTHON ?= $(shell for p in "$$(command -v python3.13)" $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13.*/bin/python3.13); do \
  [ -n "$$p" ] && "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$$p"; break; }; done)
export TF_CPP_MIN_LOG_LEVEL := 3
# pytest-xdist workers: each unit's grading and mutant runs go to one worker (a test class per unit), the
# heaviest first (tests/conftest.py orders them; xdist's own reordering by test count is turned off)
WORKERS ?= 2
PYTEST_X := -n $(WORKERS) --dist loadscope --no-loadscope-reorder --durations=30

.PHONY: demo test install install-colab test-newest colab-check generate check-exercises mutants times bench clean

## demo: set up .venv and grade a sample class through the real nbgrader
demo: install
	$(VENV)/bin/python -m autograder demo

## test: the whole suite on the newest packages, then the grading tests under Colab's pins
test: test-newest colab-check

test-newest: install install-colab   # tests/test_colab_session.py replays a Colab session in .venvs/colab
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python -m pytest $(PYTEST_X)

## colab-check: grade every unit's solution under Colab's versions, through the real nbgrader. The mutants, the
## blank exercises and the feedback pages are checked on the newest packages only: a mutant is rejected by the
## checks' logic, and a blank's zero or a feedback page does not depend on the Keras and TensorFlow versions.
colab-check: install-colab
	$(COLAB)/bin/python -c "import keras, tensorflow as tf; print('grading under Colab pins: keras', keras.__version__, 'tensorflow', tf.__version__)" 2>/dev/null
	PATH="$(CURDIR)/$(COLAB)/bin:$$PATH" $(COLAB)/bin/python -m pytest $(PYTEST_X) -m "nbgrader and not classroom and not instructor" --ignore=tests/test_mutants.py --solution-only

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[instructor]"
	$(VENV)/bin/python -m autograder.checkout_site   # solution notebooks run under plain nbconvert find autograder
	touch $@

install-colab: $(COLAB)/.installed
$(COLAB)/.installed: pyproject.toml course/constraints/colab.txt
	@test -n "$(COLAB_PYTHON)" || { echo "Colab runs Python 3.13, and no python3.13 was found on PATH or under pyenv" \
	  "($(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13.*): install one (pyenv install 3.13) or pass COLAB_PYTHON=/path/to/python3.13" >&2; exit 1; }
	@"$(COLAB_PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' || { echo "COLAB_PYTHON=$(COLAB_PYTHON) is not Python 3.13" >&2; exit 1; }
	rm -rf $(COLAB)
	$(COLAB_PYTHON) -m venv $(COLAB)
	$(COLAB)/bin/pip install --quiet --upgrade pip
	$(COLAB)/bin/pip install --quiet -c course/constraints/colab.txt -e ".[instructor]"
	$(COLAB)/bin/python -m autograder.checkout_site
	touch $@

## generate: regenerate exercises/ from solutions/ (GENERATE_FLAGS=--allow-placeholder while course.toml says placeholder = true)
generate: install
	$(VENV)/bin/python -m autograder generate $(GENERATE_FLAGS)

check-exercises: install
	$(VENV)/bin/python -m autograder generate --check

## mutants: show which wrong answers each graded step rejects
mutants: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python -m autograder mutants

## times: fast-budget run time of every solution notebook
times: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python -m autograder times

## bench: grade-class (Dask LocalCluster, process pool) against serial `nbgrader autograde` on the same 12 submissions, two rounds one after the other: speed-up, throughput per core (and by class size), where the time goes, projections for 2,100 notebooks, the medians; then one student's seven units (prints figures)
bench: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python -m autograder bench --students 12 --repeat 2 --one-student

clean:
	rm -rf $(VENV) .venvs .demo submitted autograded feedback gradebook.db
