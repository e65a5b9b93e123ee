"""Chunking, a pure function, checked with the real model's tokenizer (no torch needed)."""

from __future__ import annotations

import itertools

import pytest

from gitindex.chunking import Chunk, TokenCounter, chunk_text, language, text_hash
from gitindex.embedding import resolve_model


@pytest.fixture(scope="module")
def tokens() -> tuple[TokenCounter, int]:
    spec = resolve_model("all-MiniLM-L6-v2")
    return spec.token_counter(), spec.budget


def chunks_of(text: str, tokens: tuple[TokenCounter, int]) -> list[Chunk]:
    counter, budget = tokens
    return chunk_text(text, counter, budget)


def module(names: list[str], body: int = 2) -> str:
    """A Python module of small functions (well under the budget each, as in real code)."""
    parts = ['"""Helpers."""\n\nimport os\n']
    for name in names:
        extra = "".join(f"    step_{j} = value + {j}\n" for j in range(body))
        parts.append(
            f'\n\ndef {name}(argument):\n    """Handle {name}."""\n'
            f'    value = os.path.join(argument, "{name}")\n{extra}    return value\n'
        )
    return "".join(parts)


def assert_exact_cover(text: str, chunks: list[Chunk]) -> None:
    """Chunks are in order, do not overlap, hold their lines verbatim, and cover every
    non-blank line (lines counted the way git counts them: split at \\n only)."""
    lines = text.split("\n")
    covered: list[int] = []
    for before, after in itertools.pairwise(chunks):
        assert before.end < after.start, (before, after)
    for c in chunks:
        assert 1 <= c.start <= c.end <= len(lines)
        assert c.text == "\n".join(lines[c.start - 1 : c.end]).rstrip("\r\n")
        assert c.hash == text_hash(c.text)
        assert c.text.strip(), "no chunk is blank"
        covered.extend(range(c.start, c.end + 1))
    non_blank = [i + 1 for i, line in enumerate(lines) if line.strip()]
    assert set(non_blank) <= set(covered)


def test_every_chunk_fits_the_token_budget(tokens: tuple[TokenCounter, int]) -> None:
    counter, budget = tokens
    text = module([f"handler_{i}" for i in range(30)], body=12)
    text += "\n\n# Notes\n\n" + "\n".join(
        f"Paragraph {i}: " + " ".join(f"word{i}x{j}" for j in range(i * 7 % 60)) for i in range(40)
    )
    chunks = chunks_of(text, tokens)
    assert len(chunks) > 5
    for c in chunks:
        # The whole chunk tokenized at once, as the model will see it (only a single line that is
        # longer than the budget by itself may exceed it).
        assert counter([c.text])[0] <= budget or c.start == c.end, (c.start, c.end)
    assert sum(c.start < c.end for c in chunks) > 5
    assert_exact_cover(text, chunks)


def test_long_file_without_blank_lines_still_splits(tokens: tuple[TokenCounter, int]) -> None:
    counter, budget = tokens
    text = "\n".join(f"    total = total + compute_offset(record_{i}, window={i}, scale=factor)" for i in range(400))
    chunks = chunks_of(text, tokens)
    assert len(chunks) >= counter([text])[0] // budget
    assert all(counter([c.text])[0] <= budget for c in chunks)
    assert_exact_cover(text, chunks)


def test_a_single_huge_line_stays_one_chunk(tokens: tuple[TokenCounter, int]) -> None:
    counter, budget = tokens
    huge = "data = [" + ", ".join(f"'item_{i}'" for i in range(600)) + "]"
    assert counter([huge])[0] > 2 * budget
    only = chunks_of(huge, tokens)
    assert [(c.start, c.end, c.text) for c in only] == [(1, 1, huge)]

    text = "import os\nimport sys\n" + huge + "\nprint(data)\n"
    chunks = chunks_of(text, tokens)
    assert_exact_cover(text, chunks)
    assert any(c.text == huge and c.start == c.end == 3 for c in chunks), "the huge line is whole and alone"


@pytest.mark.parametrize("position", [3, 10, 16])
def test_boundaries_are_content_defined(tokens: tuple[TokenCounter, int], position: int) -> None:
    names = [f"function_{i}" for i in range(20)]
    before = chunks_of(module(names), tokens)
    after = chunks_of(module([*names[:position], "inserted_function", *names[position:]]), tokens)
    old, new = {c.hash for c in before}, {c.hash for c in after}
    assert len(before) >= 4, "small functions share chunks"
    assert len(new - old) <= 3, "an insertion re-embeds only the chunks around it"
    assert len(old - new) <= 3, "the other chunks keep their hashes"


def test_an_edit_inside_one_function_changes_one_chunk(tokens: tuple[TokenCounter, int]) -> None:
    text = module([f"worker_{i}" for i in range(12)], body=8)
    edited = text.replace('"""Handle worker_7."""', '"""Handle worker_7, retrying twice."""')
    assert edited != text
    old, new = {c.hash for c in chunks_of(text, tokens)}, {c.hash for c in chunks_of(edited, tokens)}
    assert len(new - old) == 1 and len(old - new) == 1


def test_decorators_and_comments_stay_with_their_definition(tokens: tuple[TokenCounter, int]) -> None:
    parts = ["import functools\n"]
    for i in range(15):
        body = "".join(f"    result_{j} = compute(argument, {j}, {i})\n" for j in range(10))
        parts.append(
            f"\n\n# Comment explaining handler {i}.\n@functools.lru_cache(maxsize={i + 1})\n"
            f"def handler_{i}(argument):\n{body}    return result_0\n"
        )
    text = "".join(parts)
    lines = text.split("\n")
    chunks = chunks_of(text, tokens)
    assert len(chunks) > 3
    assert_exact_cover(text, chunks)
    defs = [number for number, line in enumerate(lines, start=1) if line.startswith("def ")]
    assert len(defs) == 15
    for number in defs:
        assert lines[number - 3].startswith("# Comment") and lines[number - 2].startswith("@")
        owner = next(c for c in chunks if c.start <= number <= c.end)
        assert owner.start <= number - 2, "the comment and decorator above stay in the def's chunk"
    # Each definition that starts a chunk starts it at its comment.
    assert {c.start for c in chunks} - {1} <= {number - 2 for number in defs}


def test_crlf_files_chunk_like_lf_files(tokens: tuple[TokenCounter, int]) -> None:
    lf = module([f"task_{i}" for i in range(10)], body=6)
    crlf = lf.replace("\n", "\r\n")
    a, b = chunks_of(lf, tokens), chunks_of(crlf, tokens)
    assert [(c.start, c.end) for c in a] == [(c.start, c.end) for c in b]
    for c_lf, c_crlf in zip(a, b, strict=True):
        assert not c_crlf.text.endswith("\r")
        assert c_crlf.text.replace("\r\n", "\n") == c_lf.text
    assert_exact_cover(crlf, b)


@pytest.mark.parametrize("separator", ["\f", "\u2028", "\x1c", "\x85", "\r"])
def test_line_numbers_count_newlines_only(tokens: tuple[TokenCounter, int], separator: str) -> None:
    """A form feed (common in old C and Python sources) or a Unicode line separator in a
    string is not a line break for git, editors' line numbers or `path:start-end`."""
    text = module(["first", "second"], body=20).replace("import os\n", f"import os{separator}# page\n")
    text += "\n\ndef last():\n    return 'end'\n"
    chunks = chunks_of(text, tokens)
    assert_exact_cover(text, chunks)
    lines = text.split("\n")
    assert chunks[-1].end == max(i + 1 for i, line in enumerate(lines) if line.strip())
    assert chunks[-1].text.endswith("return 'end'")


@pytest.mark.parametrize("text", ["", "\n", "\n\n   \n\t\n", "\r\n\r\n"])
def test_empty_or_blank_text_has_no_chunks(tokens: tuple[TokenCounter, int], text: str) -> None:
    assert chunks_of(text, tokens) == []


def test_blank_edges_are_trimmed(tokens: tuple[TokenCounter, int]) -> None:
    chunks = chunks_of("\n\n\nvalue = 1\n\n\n", tokens)
    assert [(c.start, c.end, c.text) for c in chunks] == [(4, 4, "value = 1")]


def test_language_by_extension_and_name() -> None:
    assert language("src/app/main.py") == "python"
    assert language("web/App.TSX") == "typescript"
    assert language("build/Makefile") == "make"
    assert language("LICENSE") == "text"
    assert language("archive.unknownext") == "text"
    assert language("include/util.h") == "c" and language("util.hpp") == "cpp"  # .h is c and c++
    assert language("stubs/os.pyi") == "python" and language("Dockerfile") == "docker"
    assert language("CMakeLists.txt") == "cmake" and language("api.proto") == "proto"


def test_token_counts_of_a_long_file_match_line_by_line(tokens: tuple[TokenCounter, int]) -> None:
    # Lines are tokenized in slices (bounded memory on huge files): the slice edges change nothing.
    counter, _budget = tokens
    lines = [f"value_{i} = compute({i}, 'x' * {i % 7})" + " # note" * (i % 3) for i in range(1300)]
    assert counter(lines) == [counter([line])[0] for line in lines]
    assert len(set(counter(lines))) > 3
