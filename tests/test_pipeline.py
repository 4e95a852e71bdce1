"""The real nbgrader, end to end: solutions earn full marks, blank exercises zero."""
import json
import shutil

import pytest

from autograder import demo, pipeline
from course import syllabus

pytestmark = pytest.mark.nbgrader
UNITS = [u.id for u in syllabus.load().ready_units]


def _solution_only(request) -> bool:
    return request.config.getoption("solution_only")


def _skip_if_solution_only(request):
    if _solution_only(request):
        pytest.skip("--solution-only: the blank and the feedback are checked on the newest packages")


class _GradedUnit:
    """One unit's sample class, graded once. A class per unit (below), so that with
    pytest-xdist's `--dist loadscope` (`make test`) each unit's grading runs on one worker
    and units spread over the workers."""
    unit: str

    @pytest.fixture(scope="class")
    @classmethod
    def graded(cls, tmp_path_factory, request):
        """(unit, course root, result) of grading the two sample students of one unit
        (only the solution with --solution-only: the Colab-pins pass, see conftest.py)."""
        root = tmp_path_factory.mktemp(cls.unit)
        return cls.unit, root, demo.grade_sample_class(root, cls.unit, solution_only=_solution_only(request))

    def test_solution_full_marks_blank_zero(self, graded, request):
        unit, _, result = graded
        grades = result["grades"]
        score, max_score = grades["sample_solution"]   # automatic points (written answers: a person's)
        assert max_score > 0
        assert score == max_score, f"the solution of {unit} lost points: {grades}"
        if not _solution_only(request):
            assert grades["sample_blank"] == (0.0, max_score), f"the blank {unit} earned points: {grades}"
        print(f"{unit}: timings {result['timings']}")

    def test_written_answers_await_manual_grading(self, graded, request):
        """nbgrader's gradebook leaves the solution's written answers to a person (needs_manual_grade, no
        auto score, so nothing counted yet); the blank's, left as released, score 0 and need nobody."""
        unit, root, result = graded
        u = syllabus.load().unit(unit)
        release = json.loads((root / "exercises" / unit / u.filename).read_text())
        questions = [c["metadata"]["nbgrader"]["grade_id"] for c in release["cells"]
                     if c.get("metadata", {}).get("nbgrader", {}).get("grade")
                     and c["metadata"]["nbgrader"].get("solution")]
        assert questions, f"{unit} has no written question"
        written = result["written"]
        assert written["sample_solution"]["pending"] == questions
        assert written["sample_solution"]["points"] == dict.fromkeys(questions, 0.0)
        if not _solution_only(request):
            assert written["sample_blank"]["pending"] == []
            assert written["sample_blank"]["points"] == dict.fromkeys(questions, 0.0)

    def test_no_stderr_and_no_errors_in_graded_solution(self, graded):
        unit, root, _ = graded
        u = syllabus.load().unit(unit)
        nb = json.loads((root / "autograded" / "sample_solution" / unit / u.filename).read_text())
        noisy = [(c.get("id"), o.get("name") or o.get("ename"), (o.get("text") or o.get("evalue", ""))[:300])
                 for c in nb["cells"] for o in c.get("outputs", [])
                 if o["output_type"] == "error" or (o["output_type"] == "stream" and o["name"] == "stderr")]
        assert noisy == [], f"the solution notebook wrote errors or stderr (costs points): {noisy}"

    def test_blank_fails_with_not_implemented_messages(self, graded, request):
        _skip_if_solution_only(request)
        unit, root, _ = graded
        u = syllabus.load().unit(unit)
        nb = json.loads((root / "autograded" / "sample_blank" / unit / u.filename).read_text())
        tests = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")
                 and not c["metadata"]["nbgrader"].get("solution")]
        assert tests
        for cell in tests:
            errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
            assert errors and "not implemented yet" in errors[0]["evalue"], cell["id"]

    def test_feedback_written_for_each_student(self, graded, request):
        _skip_if_solution_only(request)
        unit, root, _ = graded
        for student in demo.SAMPLES:
            assert list((root / "feedback" / student / unit).glob("*.html")), student


for _unit in UNITS:
    globals()[f"TestUnit_{_unit}"] = type(f"TestUnit_{_unit}", (_GradedUnit,), {"unit": _unit})


@pytest.mark.instructor
def test_exercises_in_step_with_solutions():
    problems = pipeline.generate(check=True)
    assert problems == [], "run `python -m autograder generate`:\n" + "\n".join(problems)


@pytest.mark.instructor
def test_out_of_step_exercises_are_reported(root, tmp_path, monkeypatch):
    # A hand edit, a stale extra file and a missing notebook are each reported.
    committed = root / "exercises" / UNITS[0]
    pipeline.generate_into(tmp_path, [UNITS[0]])
    fresh = tmp_path / "exercises" / UNITS[0]
    edited = tmp_path / "edited"
    shutil.copytree(committed, edited)
    assert pipeline._differences(fresh, edited) == []
    notebook = next(edited.glob("*.ipynb"))
    notebook.write_text(notebook.read_text().replace("raise NotImplementedError()", "pass", 1))
    (edited / "notes.txt").write_text("by hand")
    monkeypatch.setattr(pipeline, "ROOT", tmp_path)
    problems = pipeline._differences(fresh, edited)
    assert any("differs from what solutions/ generates" in p for p in problems), problems
    assert any("notes.txt: not generated" in p for p in problems), problems
    notebook.unlink()
    assert any("missing" in p for p in pipeline._differences(fresh, edited))
