"""Content-defined chunking on line boundaries, sized by the model's token limit."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import xxhash

CHUNKER_VERSION = "lines-3"

# A line that starts a definition in most languages we meet in repositories.
_DEFINITION = re.compile(
    r"\s*(?:@\w|(?:export\s+)?(?:default\s+)?(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?"
    r"(?:def|class|function|fn|func|impl|struct|enum|trait|interface|type|module|namespace|"
    r"public|private|protected|static|const\s+\w+\s*=\s*(?:async\s*)?\(|"
    r"(?:abstract\s+)?(?:final\s+)?class|sub|package|mod)\b)"
)
_HEADING = re.compile(r"#{1,6}\s")  # markdown headings
_ATTACHED = ("@", "//", "/*", "*", "#", "--", ";", "\"\"\"")  # decorators, attributes, comments

TokenCounter = Callable[[Sequence[str]], list[int]]


class Chunk(NamedTuple):
    """Lines start..end (1-based, inclusive) of a file: their text, and the xxhash of what is
    embedded for them (`embedded`: the context lines, then the text)."""

    start: int
    end: int
    text: str
    hash: str
    symbol: str = ""  # the qualified name of the definition it holds (`Session.request`), if any
    kind: str = ""  # what that definition is: function, method, class... ("" for line chunks)
    context: str = ""  # lines from above the chunk embedded with it (its class, its signature)
    defines: tuple[str, ...] = ()  # qualified names of every definition that starts in it

    @property
    def embedded(self) -> str:
        """The text the model sees: the context lines, then the chunk's own text."""
        return f"{self.context}\n{self.text}" if self.context else self.text


def text_hash(text: str) -> str:
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogatepass"))


def estimate_tokens(lines: Sequence[str]) -> list[int]:
    """A tokenizer-free estimate (about 3 characters a token for code), for tests and fallbacks."""
    return [max(1, (len(line.strip()) + 2) // 3) if line.strip() else 0 for line in lines]


def _is_candidate(lines: Sequence[str], i: int) -> bool:
    """May a chunk start at line i? After a blank line, or at a definition or heading."""
    line, before = lines[i], lines[i - 1].strip()
    if not line.strip():
        return False
    if not before:
        return True
    # A definition starts a chunk unless its decorator or comment is right above it.
    return bool(_DEFINITION.match(line) or _HEADING.match(line)) and not before.startswith(_ATTACHED)


def _is_anchor(line: str) -> bool:
    """Cut here whenever the chunk so far is big enough: a definition, a heading, or
    (for other blank-line breaks) one in four lines chosen by their own content's hash, so the
    cut points depend only on nearby text and an edit moves no boundary far from itself."""
    if _DEFINITION.match(line) or _HEADING.match(line):
        return True
    return xxhash.xxh32_intdigest(line.strip().encode("utf-8", "surrogatepass")) % 4 == 0


def _merge_past(line: str) -> bool:
    """Between two small pieces, whether to keep going past this anchor: decided by the
    anchor line's own content (one in two), never by where the last chunk happened to end."""
    return xxhash.xxh32_intdigest(line.strip().encode("utf-8", "surrogatepass"), seed=1) % 2 == 1


def split_lines(text: str) -> list[str]:
    r"""Lines as git counts them: ended by \n only (str.splitlines also breaks at \f, \x1c-\x1e,
    \x85, \u2028 and \u2029, which would shift every line number after them)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


_split_lines = split_lines  # the old name


def chunk_text(text: str, count_tokens: TokenCounter, budget: int) -> list[Chunk]:
    """Split text into chunks of at most `budget` tokens (a single longer line stays whole)."""
    lines = split_lines(text)
    if not lines:
        return []
    tokens = count_tokens([line.rstrip("\r\n") for line in lines])
    min_tokens = budget // 4  # a piece this big ends its chunk at the next anchor
    small_tokens = budget // 8  # no chunk is cut off smaller than this by a hash decision

    # Segments: runs of lines between candidate starts, oversized ones split greedily by line.
    segments: list[tuple[int, int, int]] = []  # (first line, end line exclusive, tokens)
    start, total = 0, 0
    for i in range(len(lines)):
        if i > start and (_is_candidate(lines, i) or total + tokens[i] > budget):
            segments.append((start, i, total))
            start, total = i, 0
        total += tokens[i]
    segments.append((start, len(lines), total))

    # Cut at an anchor when the piece before it (since the previous anchor) is big enough, or,
    # between small pieces, where the anchor line's own hash says so. Both depend only on nearby
    # text, not on where the last cut fell: otherwise one inserted function shifts how every
    # later pair of small functions is grouped, and every later chunk changes.
    chunks: list[Chunk] = []
    cur_start, cur_tokens, piece_tokens = 0, 0, 0
    for first, _end, seg_tokens in segments:
        anchor = first > 0 and _is_anchor(lines[first])
        if cur_tokens and (
            cur_tokens + seg_tokens > budget
            or (anchor and (piece_tokens >= min_tokens
                            or (cur_tokens >= small_tokens and not _merge_past(lines[first]))))
        ):
            _emit(chunks, lines, cur_start, first)
            cur_start, cur_tokens = first, 0
        if anchor:
            piece_tokens = 0
        cur_tokens += seg_tokens
        piece_tokens += seg_tokens
    _emit(chunks, lines, cur_start, len(lines))
    return chunks


def _emit(chunks: list[Chunk], lines: Sequence[str], start: int, end: int) -> None:
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    if start == end:
        return
    body = "".join(lines[start:end]).rstrip("\r\n")
    chunks.append(Chunk(start + 1, end, body, text_hash(body)))


# identify (pre-commit's file-type library) names languages by file name; these tags say
# nothing about the language, and these names are folded into the one gitindex reports.
_NOT_LANGUAGES = {"text", "plain-text", "header", "binary", "executable", "non-executable", "file"}
_SAME_LANGUAGE = {"pyi": "python", "jsx": "javascript", "ts": "typescript", "tsx": "typescript",
                  "c++": "cpp", "c#": "csharp", "bash": "shell", "zsh": "shell", "scss": "css",
                  "makefile": "make", "dockerfile": "docker"}


def language(path: str) -> str:
    """The file's language by its name (`text` when it has none): python, javascript, cpp..."""
    from identify.identify import tags_from_filename  # 10 ms: only when a file is indexed

    name = path.rsplit("/", 1)[-1]
    found = {_SAME_LANGUAGE.get(tag, tag) for tag in tags_from_filename(name)} - _NOT_LANGUAGES
    if not found:
        found = {_SAME_LANGUAGE.get(tag, tag) for tag in tags_from_filename(name.lower())} - _NOT_LANGUAGES
    return min(found) if found else "text"  # .h is c and c++: the first name, for a stable answer
