"""Reference implementations of graded steps (instructor-only, never in the student wheel).

``keras_reference`` (unit 01) and ``keras_gated`` (unit 03) compute what a step must return
with Keras' own layers, ops and losses, and what known mistakes return. The hidden tests call
them; the visible checks read their values on the visible inputs from
``course/checks/expected/<notebook>.npz``, written by ``python -m autograder generate``.
"""
