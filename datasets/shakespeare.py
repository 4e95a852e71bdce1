"""Tiny Shakespeare as a string, and the course's fixed train/validation split."""
from __future__ import annotations

from .files import fetch

TRAIN_FRACTION = 0.9


def tiny_shakespeare_text(*, cache_dir=None, progress: bool = True) -> str:
    """The whole Tiny Shakespeare text (1,115,394 characters), fetched and verified."""
    # Decode the bytes directly: no newline translation, so lengths match the file.
    return fetch("tinyshakespeare", cache_dir=cache_dir, progress=progress).read_bytes().decode("utf-8")


def tiny_shakespeare_split(text: str | None = None) -> tuple[str, str]:
    """(train, validation): the first int(0.9 * len(text)) characters, then the rest.

    In order, not shuffled, so validation is unseen contiguous text."""
    if text is None:
        text = tiny_shakespeare_text()
    cut = int(TRAIN_FRACTION * len(text))
    return text[:cut], text[cut:]
