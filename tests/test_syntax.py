"""Syntax-aware chunking, on real snippets of each language parsed by the real grammars."""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gitindex.chunking import Chunk, estimate_tokens, text_hash
from gitindex.syntax import CHUNKER_ID, SUPPORTED, chunk_syntax


def chunks_of(text: str, language: str, budget: int = 256) -> list[Chunk]:
    chunks = chunk_syntax(text, language, estimate_tokens, budget)
    assert chunks is not None
    assert_exact_cover(text, chunks)
    return chunks


def assert_exact_cover(text: str, chunks: list[Chunk]) -> None:
    """In order, no overlap, verbatim lines, every non-blank line covered, hash of what is embedded."""
    lines = text.split("\n")
    for before, after in itertools.pairwise(chunks):
        assert before.end < after.start, (before, after)
    covered: set[int] = set()
    for c in chunks:
        assert 1 <= c.start <= c.end <= len(lines)
        assert c.text == "\n".join(lines[c.start - 1 : c.end]).rstrip("\r\n")
        assert c.text.strip() and lines[c.start - 1].strip() and lines[c.end - 1].strip()
        assert c.hash == text_hash(c.embedded)
        covered.update(range(c.start, c.end + 1))
    assert {i + 1 for i, line in enumerate(lines) if line.strip()} <= covered


def fill(text: str, lines: int = 6) -> str:
    """Each %FILL% line becomes comment lines (about 15 tokens each), to make a body big."""
    out = []
    for line in text.split("\n"):
        indent = line[: len(line) - len(line.lstrip())]
        if line.strip() == "%FILL%":
            out.extend(f"{indent}// note {i}: keep the running total within the allowed range" for i in range(lines))
        else:
            out.append(line)
    return "\n".join(out)


def symbols(chunks: list[Chunk]) -> list[tuple[str, str]]:
    return [(c.symbol, c.kind) for c in chunks]


def body(name: str, lines: int, indent: str = "        ") -> str:
    """Python statements, about 8 tokens a line."""
    return "".join(f"{indent}{name}_{i} = compute_value({i}, offset)\n" for i in range(lines))


PY_CLASS = (
    "import os\n\n\n"
    "class Session(Base):\n"
    '    """A session.\n\n' + "".join(f"    Line {i} of a long class docstring, it goes on.\n" for i in range(12))
    + '    """\n\n'
    "    @property\n    def method_a(self, offset):\n" + body("a", 18) + "        return a_1\n\n"
    "    def method_b(self, offset):\n" + body("b", 18) + "        return b_1\n\n\n"
    "def helper():\n    return os.sep\n"
)


def test_python_class_too_big_is_cut_into_its_methods_with_the_class_line_as_context() -> None:
    chunks = chunks_of(PY_CLASS, "python")
    by_symbol = {c.symbol: c for c in chunks}
    a, b = by_symbol["Session.method_a"], by_symbol["Session.method_b"]
    assert (a.kind, b.kind) == ("method", "method")
    assert a.context == b.context == "class Session(Base):"
    assert a.text.startswith("    @property\n    def method_a(")  # the decorator stays with it
    assert b.embedded.startswith("class Session(Base):\n    def method_b(")
    assert chunks[0].symbol == "" and chunks[0].text == "import os"  # module-level code, kind ""
    assert by_symbol["Session"].kind == "class" and by_symbol["Session"].text.startswith("class Session")
    assert chunks[-1].text.startswith("def helper") or "def helper" in chunks[-1].text


def test_small_definitions_merge_and_name_the_chunk_after_the_first() -> None:
    text = "import os\n\n\ndef one():\n    return 1\n\n\ndef two():\n    return 2\n"
    [chunk] = chunks_of(text, "python")
    assert (chunk.symbol, chunk.kind, chunk.context) == ("one", "function", "")
    assert chunk.hash == text_hash(chunk.text)


def test_large_function_splits_under_the_budget_with_its_signature_as_context() -> None:
    text = "def big(offset):\n    '''Do it.'''\n" + "".join(
        f"    if offset > {i}:\n" + body(f"v{i}", 6) + "\n" for i in range(8)
    )
    budget = 128
    chunks = chunks_of(text, "python", budget)
    assert len(chunks) > 3
    assert chunks[0].context == "" and chunks[0].text.startswith("def big(offset):")
    for c in chunks:
        assert (c.symbol, c.kind) == ("big", "function")
        assert sum(estimate_tokens(c.embedded.split("\n"))) <= budget
    assert all(c.context == "def big(offset):" for c in chunks[1:])


def test_a_line_longer_than_the_budget_stays_whole() -> None:
    long_line = "    data = [" + ", ".join(str(i) for i in range(200)) + "]\n"
    text = "def f():\n" + long_line + "    return data\n"
    chunks = chunks_of(text, "python", 64)
    assert any(c.text == long_line.rstrip("\n") for c in chunks)


def test_javascript() -> None:
    text = textwrap.dedent("""\
        import { x } from "y";

        // Adds.
        export function add(a, b) {
          return a + b;
        }

        export const twice = (a) => add(a, a);

        class Counter extends Base {
          constructor() {
            %FILL%
            super();
          }
          increment() {
            %FILL%
            this.n += 1;
          }
        }
        """)
    chunks = chunks_of(fill(text), "javascript", 120)
    assert ("add", "function") in symbols(chunks)
    assert ("twice", "function") in symbols(chunks)
    assert ("Counter.increment", "method") in symbols(chunks)
    add = next(c for c in chunks if c.symbol == "add")
    assert "// Adds.\nexport function add" in add.text  # the comment right above stays with it
    inc = next(c for c in chunks if c.symbol == "Counter.increment")
    assert inc.context.startswith("class Counter")


def test_javascript_commonjs_assignments_and_doc_comments() -> None:
    text = textwrap.dedent("""\
        /**
         * Send a response.
         */

        res.send = function send(body) {
          %FILL%
          return this;
        };

        Router.prototype.handle = function (req, res) {
          %FILL%
        };

        module.exports = function createApplication() {
          %FILL%
        };
        """)
    chunks = chunks_of(fill(text, 12), "javascript", 100)
    assert ("res.send", "method") in symbols(chunks)
    assert ("Router.handle", "method") in symbols(chunks)  # the prototype is not part of the name
    assert ("createApplication", "function") in symbols(chunks)
    send = next(c for c in chunks if c.symbol == "res.send")
    assert send.start == 1 and "Send a response." in send.text  # a doc comment across one blank line


def test_typescript_and_tsx() -> None:
    text = textwrap.dedent("""\
        export interface Shape {
          area(): number;
        }

        export type Id = string | number;

        export default class Square implements Shape {
          constructor(private side: number) {}
          area(): number {
            return this.side * this.side;
          }
        }
        """)
    chunks = chunks_of(text, "typescript", 16)
    found = symbols(chunks)
    assert ("Shape", "interface") in found and ("Id", "type") in found
    assert ("Square.area", "method") in found
    tsx = "export function App() {\n  return <div className=\"a\">{1}</div>;\n}\n"
    assert symbols(chunks_of(tsx, "tsx")) == [("App", "function")]
    assert symbols(chunks_of(tsx, "typescript")) == [("App", "function")]  # retried as TSX


def test_go() -> None:
    text = textwrap.dedent("""\
        package geo

        import "math"

        // Point is a point.
        type Point struct {
        \tX, Y float64
        }

        // Norm is its length.
        func (p *Point) Norm() float64 {
        \treturn math.Hypot(p.X, p.Y)
        }

        func Origin() Point {
        \treturn Point{}
        }
        """)
    chunks = chunks_of(text, "go", 16)
    found = symbols(chunks)
    assert ("Point", "struct") in found and ("Point.Norm", "method") in found
    assert ("Origin", "function") in found
    assert next(c for c in chunks if c.symbol == "Point.Norm").text.startswith("// Norm is its length.")


def test_rust() -> None:
    text = textwrap.dedent("""\
        use std::fmt;

        /// A thing.
        #[derive(Debug)]
        pub struct Thing {
            a: i32,
        }

        impl<T: Clone> fmt::Display for Wrapper<T> {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                %FILL%
                write!(f, "{}", self.0)
            }

            fn other(&self) -> i32 {
                %FILL%
                let value = 1;
                value + 2
            }
        }

        pub enum Color { Red, Green }
        """)
    chunks = chunks_of(fill(text), "rust", 120)
    found = symbols(chunks)
    assert ("Thing", "struct") in found and ("Color", "enum") in found
    assert ("Wrapper.other", "method") in found
    assert "/// A thing.\n#[derive(Debug)]\npub struct" in next(c for c in chunks if c.symbol == "Thing").text
    assert next(c for c in chunks if c.symbol == "Wrapper.other").context.startswith("impl<T: Clone>")


def test_java() -> None:
    text = textwrap.dedent("""\
        package a.b;

        import java.util.List;

        /** A widget. */
        public class Widget extends Base {
            private int size;

            public Widget(int size) {
                %FILL%
                this.size = size;
            }

            @Override
            public int getSize() {
                %FILL%
                return size * 2 + computeOffset(size);
            }
        }
        """)
    chunks = chunks_of(fill(text), "java", 120)
    found = symbols(chunks)
    assert ("Widget.Widget", "method") in found and ("Widget.getSize", "method") in found
    get = next(c for c in chunks if c.symbol == "Widget.getSize")
    assert get.text.lstrip().startswith("@Override") and get.context.startswith("public class Widget")


def test_c() -> None:
    text = textwrap.dedent("""\
        #ifndef POINT_H
        #define POINT_H
        #include <stdio.h>

        typedef struct {
            int x;
            int y;
        } point_t;

        /* Prints a point. */
        static void print_point(const point_t *p) {
            printf("%d %d", p->x, p->y);
        }

        int main(void) {
            return 0;
        }
        #endif
        """)
    chunks = chunks_of(text, "c", 20)
    found = symbols(chunks)
    assert ("point_t", "struct") in found and ("print_point", "function") in found
    assert ("main", "function") in found


def test_cpp() -> None:
    text = textwrap.dedent("""\
        namespace geo {
        class Shape {
         public:
          virtual ~Shape() {}
          double area() const {
            %FILL%
            return width_ * height_ + offset_;
          }
        };

        double Shape::scaled(double k) const {
          %FILL%
          return area() * k;
        }
        }  // namespace geo
        """)
    chunks = chunks_of(fill(text), "cpp", 120)
    found = symbols(chunks)
    assert ("geo.Shape.area", "method") in found and ("geo.Shape.scaled", "method") in found
    assert next(c for c in chunks if c.symbol == "geo.Shape.area").context.endswith("class Shape {")


def test_unsupported_broken_and_empty() -> None:
    assert chunk_syntax("x = 1\n", "cobol", estimate_tokens, 256) is None
    broken = "def f(:\n    return (\n\nclass {\n  }}} ]]\n"
    assert chunk_syntax(broken, "python", estimate_tokens, 256) is None
    assert chunk_syntax("", "python", estimate_tokens, 256) == []
    assert CHUNKER_ID == "syntax-1" and "python" in SUPPORTED


def test_importing_the_module_loads_no_grammar() -> None:
    code = "import sys, gitindex.syntax; print(any(m.startswith('tree_sitter') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def large_module() -> str:
    """A real module nobody here wrote, present wherever the tests run (the standard library's)."""
    return Path(argparse.__file__).read_text(encoding="utf-8")


def changed(before: list[Chunk], after: list[Chunk]) -> tuple[int, int]:
    """How many chunks are new, and how many are gone (by hash)."""
    old, new = {c.hash for c in before}, {c.hash for c in after}
    return len(new - old), len(old - new)


@pytest.mark.parametrize("edit", ["insert function", "insert method", "edit line"])
def test_an_edit_changes_only_the_chunks_near_it(edit: str) -> None:
    text = large_module()
    lines = text.split("\n")
    middle = len(lines) // 2
    if edit == "insert function":
        at = min((i for i, line in enumerate(lines) if line.startswith(("def ", "class "))),
                 key=lambda i: abs(i - middle))
        new = ["def inserted_helper(value):", '    """A new helper."""', "    return value * 2 + 1", "", ""]
    elif edit == "insert method":
        at = min((i for i, line in enumerate(lines) if line.startswith("    def ")), key=lambda i: abs(i - middle))
        new = ["    def inserted_method(self, value):", "        return value * 2", ""]
    else:
        at = next(i for i in range(middle, len(lines)) if lines[i].strip().startswith("return "))
        new, lines = [lines[at] + "  # changed"], lines[:at] + lines[at + 1 :]
    edited = "\n".join(lines[:at] + new + lines[at:])

    before, after = chunks_of(text, "python"), chunks_of(edited, "python")
    assert len(before) > 30
    added, gone = changed(before, after)
    assert added <= 2 and gone <= 2, (added, gone)
    # Far from the edit every chunk is the same text, same hash (shifted by the inserted lines).
    shift = len(new) - (1 if edit == "edit line" else 0)
    far_before = [c for c in before if c.end < at - 40]
    far_after = [c for c in before if c.start > at + 40]
    assert far_before == [c for c in after if c.end < at - 40]
    assert [(c.text, c.hash) for c in far_after] == [
        (c.text, c.hash) for c in after if c.start > at + 40 + shift
    ]
    assert far_before and far_after


def test_a_c_header_holding_cpp_is_parsed_as_cpp() -> None:
    header = textwrap.dedent("""\
        #pragma once
        namespace geo {
        template <typename T>
        class Box : public Shape {
         public:
          T area() const { return w * h; }
         private:
          T w, h;
        };
        }  // namespace geo
        """)
    chunks = chunks_of(header, "c")  # identify names a .h file "c"; the C grammar fails on it
    assert [(c.symbol, c.kind) for c in chunks] == [("geo", "module")] and "geo.Box" in chunks[0].defines
