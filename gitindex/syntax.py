"""Syntax-aware chunking: tree-sitter definitions (functions, classes, methods) as chunks."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

import xxhash

from gitindex.chunking import Chunk, TokenCounter, _split_lines, chunk_text, text_hash

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

CHUNKER_ID = "syntax-1"
# "tsx" is TypeScript with JSX; `chunking.language` names .tsx files "typescript", so a
# "typescript" file that the TypeScript grammar cannot parse is tried once more as TSX, and a
# "c" file (`.h` included) once more as C++.
SUPPORTED = ("python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp")

_GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}

_MAX_ERROR_SHARE = 0.1  # more of the file's lines than this inside ERROR nodes: not parsed well enough

# Siblings that belong to the definition right below them (no blank line between).
_ATTACHED = frozenset({"comment", "line_comment", "block_comment", "attribute_item", "decorator"})
# Nodes whose children are listed as if they stood in the enclosing scope.
_TRANSPARENT = frozenset({
    "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef",
    "linkage_specification", "declaration_list", "enum_body_declarations",
})
_FUNCTIONS = frozenset({
    "function_definition", "function_declaration", "generator_function_declaration", "function_signature",
    "method_definition", "method_signature", "abstract_method_signature", "function_item",
    "function_signature_item", "method_declaration", "constructor_declaration",
    "compact_constructor_declaration",
})
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})
_TYPES = {  # node type -> (kind, whether its body holds definitions to descend into)
    "class_definition": ("class", True), "class_declaration": ("class", True),
    "abstract_class_declaration": ("class", True), "class": ("class", True),
    "class_specifier": ("class", True), "record_declaration": ("class", True),
    "interface_declaration": ("interface", True), "annotation_type_declaration": ("interface", True),
    "struct_specifier": ("struct", True), "union_specifier": ("struct", True),
    "struct_item": ("struct", False), "union_item": ("struct", False),
    "enum_declaration": ("enum", True), "enum_specifier": ("enum", False), "enum_item": ("enum", False),
    "trait_item": ("trait", True), "impl_item": ("impl", True),
    "mod_item": ("module", True), "namespace_definition": ("module", True),
    "internal_module": ("module", True), "module": ("module", True),
    "type_alias_declaration": ("type", False), "type_item": ("type", False),
}
_GO_TYPES = {"struct_type": "struct", "interface_type": "interface"}
# Languages whose class-like bodies make their functions methods (Go and C++ name them otherwise too).
_SCOPES_WITH_METHODS = frozenset({"class", "interface", "struct", "trait", "impl", "enum"})


class _Def(NamedTuple):
    node: Node  # the definition itself, inside any wrapper (decorators, export, template)
    kind: str
    name: str
    body: Node | None  # where its member definitions are, for class-like definitions


class _Scope(NamedTuple):
    prefix: tuple[str, ...]  # qualified name parts: ("Session",)
    symbol: str  # ".".join(prefix)
    context: tuple[tuple[int, ...], ...]  # header rows of the enclosing definitions, outer first
    in_class: bool


class _Unit(NamedTuple):
    start: int  # 0-based rows, inclusive
    end: int
    symbol: str
    kind: str
    context: tuple[tuple[int, ...], ...]
    key: str  # the line whose hash decides whether to merge past this unit
    is_def: bool
    definition: _Def | None


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _last_row(node: Node) -> int:
    """The node's last row (a node that ends at column 0 ends on the row before)."""
    row = node.end_point.row
    return row - 1 if node.end_point.column == 0 and row > node.start_point.row else row


def _base_name(node: Node | None) -> str:
    """`*Point` -> Point, `List[T]` -> List, `fmt::Display` -> Display, `Wrapper<T>` -> Wrapper."""
    for _ in range(8):
        if node is None:
            return ""
        if node.type in ("pointer_type", "reference_type", "parameter_declaration"):
            inner = node.child_by_field_name("type") or (node.named_children[-1] if node.named_children else None)
        elif node.type in ("generic_type", "scoped_type_identifier", "qualified_type"):
            inner = node.child_by_field_name("type") or node.child_by_field_name("name")
        else:
            break
        node = inner
    return _text(node)


def _declarator_name(node: Node | None) -> str:
    """A C/C++ declarator's name, `::` written as dots: `Foo::bar` -> Foo.bar."""
    for _ in range(16):
        if node is None:
            return ""
        if node.type in ("identifier", "field_identifier", "qualified_identifier", "destructor_name",
                         "operator_name", "type_identifier", "template_function"):
            break
        inner = node.child_by_field_name("declarator")
        node = inner if inner is not None else (node.named_children[-1] if node.named_children else None)
    return _text(node).replace("::", ".")


def _definition(node: Node, in_class: bool) -> _Def | None:
    """The definition this scope member is, unwrapped (None for other statements)."""
    kind = node.type
    if kind in ("decorated_definition", "export_statement"):
        inner = node.child_by_field_name("definition") or node.child_by_field_name("declaration")
        return _definition(inner, in_class) if inner is not None else None
    if kind == "expression_statement":  # TypeScript: namespace X {...}; JavaScript: x.y = function ...
        inner = node.named_children[0] if node.named_child_count == 1 else None
        if inner is not None and inner.type == "assignment_expression":
            return _assigned_function(node, inner)
        return _definition(inner, in_class) if inner is not None and inner.type == "internal_module" else None
    if kind in ("ambient_declaration", "template_declaration"):
        inner = next((c for c in reversed(node.named_children)
                      if c.type not in ("template_parameter_list", "comment")), None)
        return _definition(inner, in_class) if inner is not None else None
    if kind in _FUNCTIONS:
        if kind == "function_definition" and node.child_by_field_name("declarator") is not None:
            name = _declarator_name(node.child_by_field_name("declarator"))  # C, C++
            return _Def(node, "method" if in_class or "." in name else "function", name, None)
        name = _text(node.child_by_field_name("name"))
        if kind == "method_declaration" and node.child_by_field_name("receiver") is not None:  # Go
            receiver = node.child_by_field_name("receiver")
            params = receiver.named_children if receiver is not None else []
            return _Def(node, "method", f"{_base_name(params[0]) if params else ''}.{name}", None)
        is_method = in_class or kind in ("method_definition", "method_signature", "abstract_method_signature")
        return _Def(node, "method" if is_method else "function", name, None)
    if kind in ("lexical_declaration", "variable_declaration", "public_field_definition", "field_definition"):
        declarator = node if kind.endswith("field_definition") else next(
            (c for c in node.named_children if c.type == "variable_declarator"), None)
        value = declarator.child_by_field_name("value") if declarator is not None else None
        if declarator is None or value is None:
            return None
        name = _text(declarator.child_by_field_name("name") or declarator.child_by_field_name("property"))
        if value.type in _FUNCTION_VALUES:
            return _Def(node, "method" if in_class else "function", name, None)
        if value.type == "class":
            return _Def(node, "class", name, value.child_by_field_name("body"))
        return None
    if kind == "type_declaration":  # Go: type X struct {...}, or a group of them
        spec = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
        if spec is None:
            return None
        shape = spec.child_by_field_name("type")
        return _Def(node, _GO_TYPES.get(shape.type if shape is not None else "", "type"),
                    _text(spec.child_by_field_name("name")), None)
    if kind in ("type_definition", "declaration", "field_declaration"):  # C, C++: typedef struct {...} T;
        shape = node.child_by_field_name("type")
        if shape is None or shape.type not in _TYPES or shape.child_by_field_name("body") is None:
            return None
        found = _definition(shape, in_class)
        name = _text(shape.child_by_field_name("name")) or _declarator_name(node.child_by_field_name("declarator"))
        return found._replace(node=node, name=name) if found is not None else None
    if kind in _TYPES:
        body = node.child_by_field_name("body")
        if kind in ("struct_specifier", "union_specifier", "class_specifier", "enum_specifier") and body is None:
            return None  # a forward declaration or a use of the type
        what, container = _TYPES[kind]
        if kind == "impl_item":
            name = _base_name(node.child_by_field_name("type"))
        else:
            name = _text(node.child_by_field_name("name")).strip("\"'")
        return _Def(node, what, name, body if container else None)
    return None


def _assigned_function(node: Node, assignment: Node) -> _Def | None:
    """CommonJS-style definitions: `res.send = function send(body) {...}`,
    `Router.prototype.handle = (req) => ...`, `module.exports = function createApp() {...}`.
    Named by the assigned-to path (`prototype` left out), or by the function's own name when the
    target is only `module.exports` / `exports`."""
    value = assignment.child_by_field_name("right")
    target = assignment.child_by_field_name("left")
    if value is None or target is None or value.type not in _FUNCTION_VALUES:
        return None
    name = ".".join(part for part in _text(target).split(".") if part != "prototype")
    if name in ("module.exports", "exports"):
        name = _text(value.child_by_field_name("name")) or name
    return _Def(node, "method" if "." in name else "function", name, None)


def _members(children: Iterable[Node], in_class: bool, after: int) -> Iterator[tuple[int, int, _Def]]:
    """(first row, last row, definition) of the definitions among a scope's children, their
    comments, attributes and decorators right above them included."""
    attached = -1  # first row of the run of comments right above the current node, if any
    attached_end = -1
    for child in children:
        if child.type in _TRANSPARENT:
            yield from _members(child.children, in_class, after)
            attached = -1
            continue
        start, end = child.start_point.row, _last_row(child)
        if child.type in _ATTACHED:
            if start <= after:  # a comment at the end of the previous definition's last line
                continue
            if attached < 0 or start > attached_end + 1:
                attached = start
            attached_end = end
            continue
        if not child.is_named:
            continue
        found = _definition(child, in_class)
        if found is not None and start > after:
            # Comments right above belong to it; a doc comment (/** ... */) across one blank line too.
            gap = 2 if attached >= 0 and _text(child.prev_named_sibling).startswith("/**") else 1
            first = attached if attached >= 0 and attached_end >= start - gap else start
            yield first, end, found
            after = end
        attached = -1


@functools.cache
def _parser(language: str) -> Parser | None:
    """A parser for the language (None when its grammar is not installed)."""
    module_name, function = _GRAMMARS[language]
    try:
        from tree_sitter import Language, Parser

        grammar = getattr(importlib.import_module(module_name), function)
        return Parser(Language(grammar()))
    except (ImportError, AttributeError, ValueError):  # no grammar, or one this tree-sitter cannot load
        return None


def _error_rows(root: Node) -> int:
    """How many rows lie in the tree's ERROR nodes (outermost ones) and missing tokens."""
    rows: set[int] = set()
    stack = [root]
    while stack:
        for child in stack.pop().children:
            if child.is_error:
                rows.update(range(child.start_point.row, _last_row(child) + 1))
            elif child.is_missing:
                rows.add(child.start_point.row)
            elif child.has_error:
                stack.append(child)
    return len(rows)


def _parse(text: str, language: str, lines: int) -> Node | None:
    parser = _parser(language)
    if parser is None:
        return None
    root = parser.parse(text.encode("utf-8", "surrogatepass")).root_node
    if root.has_error and _error_rows(root) > _MAX_ERROR_SHARE * lines:
        return None
    return root


def chunk_syntax(text: str, language: str, count_tokens: TokenCounter, budget: int) -> list[Chunk] | None:
    """Split source code into chunks of at most `budget` tokens that follow its definitions, or
    None when the language is not in SUPPORTED, its grammar is missing, or the file does not
    parse (more than a tenth of its lines in syntax errors): the caller then uses `chunk_text`.

    Every non-blank line lies in exactly one chunk. A definition that fits is one chunk (its
    decorators and the comments right above it included); small neighbours, module-level code
    included, merge up to the budget where content-defined rules allow (see `_Chunker.level`).
    A class-like definition too big for one chunk is cut into its members; any other piece too
    big is cut on line boundaries by `chunk_text`.

    `symbol` is the qualified name of the chunk's first definition, parts joined by dots:
    `Session.request`, Go `Point.Move` (the receiver's type), Rust `Thing.new` (an `impl Thing`
    method; the impl itself is `Thing`, kind impl), C++ `ns.Foo.get` (also for `int Foo::get()`
    defined outside its class). A chunk with no definition of its own takes its scope's name
    ("" at module level) and kind "". `kind` is function, method, class, interface, struct,
    enum, trait, impl, module or type. `context` holds the header lines of the enclosing
    definitions (`class Session(SessionRedirectMixin):`) and, for a later piece of a split
    definition, its own signature, capped at budget // 8 tokens.
    """
    if language not in _GRAMMARS:
        return None
    lines = _split_lines(text)
    if not lines:
        return []
    root = _parse(text, language, len(lines))
    if root is None and language == "typescript":
        root = _parse(text, "tsx", len(lines))
    if root is None and language == "c":  # a .h file is often C++: 56% of those here failed as C
        root = _parse(text, "cpp", len(lines))
    if root is None:
        return None
    tokens = count_tokens([line.rstrip("\r\n") for line in lines])
    chunker = _Chunker(lines, tokens, count_tokens, budget)
    chunker.level(root.children, 0, len(lines) - 1, _Scope((), "", (), False), None)
    return chunker.chunks


class _Chunker:
    def __init__(self, lines: list[str], tokens: list[int], count_tokens: TokenCounter, budget: int) -> None:
        self.lines, self.tokens, self.count_tokens, self.budget = lines, tokens, count_tokens, budget
        self.cumulative = [0]
        for count in tokens:
            self.cumulative.append(self.cumulative[-1] + count)
        self.context_cap = max(1, budget // 8)
        self.chunks: list[Chunk] = []
        self.last_context: tuple[tuple[int, ...], ...] = ()  # of the last chunk emitted

    def size(self, start: int, end: int) -> int:
        return self.cumulative[end + 1] - self.cumulative[start]

    def context_size(self, context: tuple[tuple[int, ...], ...]) -> int:
        return min(self.context_cap, sum(self.tokens[row] for group in context for row in group))

    def context_text(self, context: tuple[tuple[int, ...], ...]) -> str:
        rows = [row for group in context for row in group]
        text = "\n".join(self.lines[row].rstrip("\r\n") for row in rows)
        if len(rows) == 1 and self.tokens[rows[0]] > self.context_cap:  # one long line: its start
            text = text[: max(1, len(text) * self.context_cap // self.tokens[rows[0]])]
        return text

    def with_header(self, context: tuple[tuple[int, ...], ...], found: _Def) -> tuple[tuple[int, ...], ...]:
        """The context plus the definition's header rows, cut to the cap: first the header's
        continuation lines go, then the outermost scopes (one line is always kept)."""
        node = found.node
        name = node.child_by_field_name("name") or node.child_by_field_name("declarator")
        first = name.start_point.row if name is not None else node.start_point.row
        last = first
        body = found.body if found.body is not None else node.child_by_field_name("body")
        if body is not None and body.start_point.row > first:
            opening = body.child(0)
            opens = opening is not None and opening.type in ("{", "(")  # else Python: the block is below
            last = body.start_point.row if opens else body.start_point.row - 1
        groups = [list(group) for group in context]
        groups.append([row for row in range(first, min(last, first + 3) + 1) if self.lines[row].strip()] or [first])
        while sum(self.tokens[row] for group in groups for row in group) > self.context_cap:
            if len(groups[-1]) > 1:
                groups[-1].pop()
            elif len(groups) > 1:
                groups.pop(0)
            else:
                break
        return tuple(tuple(group) for group in groups)

    def emit(self, start: int, end: int, symbol: str, kind: str, context: tuple[tuple[int, ...], ...],
             defines: tuple[str, ...] = ()) -> None:
        lines = self.lines
        while start <= end and not lines[start].strip():
            start += 1
        while end >= start and not lines[end].strip():
            end -= 1
        if start > end:
            return
        body = "".join(lines[start : end + 1]).rstrip("\r\n")
        chunk = Chunk(start + 1, end + 1, body, "", symbol, kind, self.context_text(context), defines)
        self.last_context = context
        self.chunks.append(chunk._replace(hash=text_hash(chunk.embedded)))

    def split(self, unit: _Unit, signature_row: int, rest: tuple[tuple[int, ...], ...]) -> None:
        """Cut a unit too big for one chunk on line boundaries (content-defined, by chunk_text);
        pieces after the one holding `signature_row` get the `rest` context."""
        start, end = unit.start, unit.end
        own = self.tokens[start : end + 1]
        room = max(1, self.budget - max(self.context_size(unit.context), self.context_size(rest)))

        def counted(lines: Sequence[str]) -> list[int]:  # the tokens of these very lines, known already
            return own if len(lines) == len(own) else self.count_tokens(lines)

        for piece in chunk_text("".join(self.lines[start : end + 1]), counted, room):
            first = start + piece.start - 1
            context = rest if first > signature_row else unit.context
            holds_name = unit.is_def and first <= signature_row  # the piece the definition starts in
            self.emit(first, start + piece.end - 1, unit.symbol, unit.kind, context,
                      (unit.symbol,) if holds_name else ())

    def level(self, children: Sequence[Node], start: int, end: int, scope: _Scope, head: _Unit | None) -> None:
        """Chunk rows start..end of one scope (the module, or a class too big for one chunk).

        Each definition (or run of code between definitions) is a unit. Units merge into the
        current chunk unless it would overflow the budget, or the unit before is big (a
        quarter of the budget), or the chunk is past an eighth of the budget and the unit's own
        first line hashes to "cut". So every cut depends on the units around it, never on where
        the previous cut fell, and an edit regroups only the chunks near it, as in `chunk_text`.
        """
        units: list[_Unit] = [head] if head is not None else []
        row = start
        key_of = self.key
        for first, last, found in _members(children, scope.in_class, start - 1):
            if first > end:
                break
            if first > row:
                units.append(_Unit(row, first - 1, scope.symbol, "", scope.context, key_of(row, first - 1), False, None))
            name_row = found.node.start_point.row
            symbol = ".".join((*scope.prefix, found.name or "<anonymous>"))
            units.append(_Unit(first, min(last, end), symbol, found.kind, scope.context,
                               self.lines[name_row].strip(), True, found))
            row = last + 1
        if row <= end:
            units.append(_Unit(row, end, scope.symbol, "", scope.context, key_of(row, end), False, None))

        budget, min_tokens, small_tokens = self.budget, self.budget // 4, self.budget // 8
        current: list[_Unit] = []
        current_tokens = previous = 0
        for unit in units:
            size = self.size(unit.start, unit.end)
            context = self.context_size(unit.context)
            if size + context > budget:
                self.flush(current)
                current, current_tokens = [], 0
                self.expand(unit, scope)
                previous = size + context  # over the budget: what follows may be glued on
                continue
            # Small code between definitions (a constant, a closing brace) is no cut point:
            # it stays with what comes before it, as it would in `chunk_text`.
            anchor = unit.is_def or size >= small_tokens
            if not current and not anchor and self.glue(unit, previous):
                continue
            if current and (
                current_tokens + size > budget
                or (anchor and (previous >= min_tokens
                                or (current_tokens >= small_tokens and not _merge_past(unit.key))))
            ):
                self.flush(current)
                current, current_tokens = [], 0
            if not current:
                current_tokens = context
            current.append(unit)
            current_tokens += size
            previous = size if anchor else previous + size
        self.flush(current)

    def glue(self, unit: _Unit, previous: int) -> bool:
        """Add small code right after a cut-up definition (its class's closing brace) to the
        last chunk, when that fits."""
        if not self.chunks or previous <= self.budget:
            return False
        last = self.chunks[-1]
        last_context = sum(self.tokens[row] for group in self.last_context for row in group)
        if self.size(last.start - 1, unit.end) + min(self.context_cap, last_context) > self.budget:
            return False
        self.chunks.pop()
        self.emit(last.start - 1, unit.end, last.symbol, last.kind, self.last_context, last.defines)
        return True

    def key(self, start: int, end: int) -> str:
        return next((line.strip() for line in self.lines[start : end + 1] if line.strip()), "")

    def flush(self, units: list[_Unit]) -> None:
        if not units:
            return
        first = next((unit for unit in units if unit.is_def), units[0])
        self.emit(units[0].start, units[-1].end, first.symbol, first.kind, units[0].context,
                  tuple(name for unit in units if unit.is_def for name in _defined(unit)))

    def expand(self, unit: _Unit, scope: _Scope) -> None:
        """A unit too big for one chunk: a class-like definition is cut into its members
        (its header merged with the first ones), anything else on line boundaries."""
        found = unit.definition
        if found is None:
            self.split(unit, unit.end, unit.context)  # code: no signature to repeat
            return
        inner = self.with_header(unit.context, found)
        if found.body is not None:
            in_class = found.kind in _SCOPES_WITH_METHODS
            members = list(_members(found.body.children, in_class, found.body.start_point.row - 1))
            if members:
                first = members[0][0]
                head: _Unit | None = unit._replace(end=first - 1)
                assert head is not None
                if self.size(head.start, head.end) + self.context_size(head.context) > self.budget:
                    self.split(head, found.node.start_point.row, inner)
                    head = None
                prefix = (*scope.prefix, found.name or "<anonymous>")
                inner_scope = _Scope(prefix, ".".join(prefix), inner, in_class)
                self.level(found.body.children, first, unit.end, inner_scope, head)
                return
        self.split(unit, found.node.start_point.row, inner)


def _defined(unit: _Unit) -> Iterator[str]:
    """The qualified names a whole definition defines: its own, and its members' (one level)."""
    yield unit.symbol
    found = unit.definition
    whole = found is not None and unit.end >= _last_row(found.node)  # not the head of a cut-up class
    if found is not None and found.body is not None and whole:
        in_class = found.kind in _SCOPES_WITH_METHODS
        for _first, _last, member in _members(found.body.children, in_class, found.body.start_point.row - 1):
            if member.name:
                yield f"{unit.symbol}.{member.name}"


def _merge_past(line: str) -> bool:
    """Between small units, whether to keep going past this one: decided by its first line's
    own content (one in two), as `chunking._merge_past` does for line chunks."""
    return xxhash.xxh32_intdigest(line.encode("utf-8", "surrogatepass"), seed=1) % 2 == 1
