import pytest

from course import budget


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("COURSE_BUDGET", "NBGRADER_EXECUTION", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(budget, "gpu_available", lambda: False)


def test_explicit_choice_wins_over_everything(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("COURSE_BUDGET", "fast")
    assert budget.pick("full").name == "full"


def test_environment_variable_overrides_grading(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("COURSE_BUDGET", "full")
    assert budget.pick().full


@pytest.mark.parametrize("var,value", [("NBGRADER_EXECUTION", "autograde"),
                                       ("NBGRADER_EXECUTION", "validate"), ("CI", "true")])
def test_grading_and_ci_are_fast_even_with_a_gpu(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    monkeypatch.setattr(budget, "gpu_available", lambda: True)
    chosen = budget.pick()
    assert chosen.fast and chosen.pick(fast=1, full=2) == 1


def test_gpu_means_full(monkeypatch):
    monkeypatch.setattr(budget, "gpu_available", lambda: True)
    assert budget.pick().full and "GPU" in str(budget.pick())


def test_no_gpu_means_fast():
    assert budget.pick().fast


@pytest.mark.parametrize("bad", ["quick", "", "FULLL"])
def test_bad_names_are_refused_with_a_clear_message(monkeypatch, bad):
    with pytest.raises(ValueError, match="'fast' or 'full'"):
        budget.pick(bad or " ")


@pytest.fixture
def no_choice(monkeypatch):
    monkeypatch.setattr(budget, "_chosen", None)


def test_the_budget_cell_chooses(no_choice, capsys):
    assert budget.choose("full").full and budget.pick().full
    assert "budget cell" in capsys.readouterr().out
    assert budget.choose(" Fast ").fast and budget.pick().fast
    budget.choose("auto")
    assert budget.pick().fast and "no GPU" in str(budget.pick())


def test_auto_in_the_budget_cell_means_full_on_a_gpu(no_choice, monkeypatch):
    # Colab with a GPU runtime (a T4): the budget cell left at "auto" runs the full budget.
    monkeypatch.setattr(budget, "gpu_available", lambda: True)
    assert budget.choose("auto").full


def test_grading_ignores_the_budget_cell(no_choice, monkeypatch):
    budget.choose("full")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert budget.pick().fast and "nbgrader" in str(budget.pick())


def test_the_environment_variable_wins_over_the_budget_cell(no_choice, monkeypatch):
    budget.choose("fast")
    monkeypatch.setenv("COURSE_BUDGET", "full")
    assert budget.pick().full


def test_a_bad_choice_is_refused(no_choice):
    with pytest.raises(ValueError, match="'fast' or 'full'"):
        budget.choose("ful")
