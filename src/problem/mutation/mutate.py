"""Lists the mutation candidates of the Python files under a folder, as fixbench's `inject` needs.

Usage: python -I -B mutate.py DIR

Prints one JSON list. Each candidate is a minimal token-level edit of one file: `file` (relative
path, with `/`), `kind`, `line` (1-based), `start` and `end` (byte offsets into the file's UTF-8
text), `original` (the text between them), `replacement` and `scope` (the dotted name of the
enclosing function or class, "" at module level). Only edits whose file still compiles are
printed, ordered by file, offset and kind. Test files, code under `if __name__ == "__main__":`
or `if TYPE_CHECKING:`, annotations, f-strings, `__all__` and version assignments are left
alone. Needs Python 3.8 or later; uses the standard library only.
"""

import ast
import bisect
import hashlib
import json
import os
import re
import sys
import warnings

# An int bigger than this is left alone: it is an id, a mask or a size, not a bound.
MAX_INT = 10**6

FLIP = {ast.Lt: ">=", ast.GtE: "<", ast.LtE: ">", ast.Gt: "<=", ast.Eq: "!=", ast.NotEq: "==",
        ast.In: "not in", ast.NotIn: "in", ast.Is: "is not", ast.IsNot: "is"}
BOUND = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">"}
TOKENS = {ast.Lt: ["<"], ast.GtE: [">="], ast.LtE: ["<="], ast.Gt: [">"], ast.Eq: ["=="],
          ast.NotEq: ["!="], ast.In: ["in"], ast.NotIn: ["not", "in"], ast.Is: ["is"],
          ast.IsNot: ["is", "not"]}
# Calls whose arguments are not swapped: they commute (the swap changes nothing), or the swap
# is a TypeError on every call (a crash, not a bug worth hunting).
NO_SWAP = {"max", "min", "gcd", "lcm", "hypot", "isclose",
           "isinstance", "issubclass", "getattr", "setattr", "hasattr", "delattr"}
# Expressions that take `+ 1` without parentheses (they bind at least as tightly as `+`).
TIGHT = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant, ast.UnaryOp, ast.List,
         ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
TIGHT_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult)
WORD = re.compile(rb"[A-Za-z_][A-Za-z_0-9]*")
OPERATOR = re.compile(rb"[<>=!+\-*/%@&|^~]+")
# The order candidates of one spot are kept in when two kinds propose the same edit.
KIND_RANK = ["off_by_one", "comparison", "boolean", "dropped_return", "dropped_branch",
             "swapped_arguments", "constant"]


def is_test_file(rel):
    base = rel.rsplit("/", 1)[-1]
    return base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py"


def is_int(node):
    return (isinstance(node, ast.Constant) and type(node.value) is int
            and 0 <= node.value <= MAX_INT)


def is_skipped_if(node):
    """`if __name__ == "__main__":` and `if TYPE_CHECKING:` (also `typing.TYPE_CHECKING`)."""
    t = node.test
    if isinstance(t, ast.Name) and t.id == "TYPE_CHECKING":
        return True
    if isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING":
        return True
    if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
        sides = [t.left, t.comparators[0]]
        names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
        mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
        return bool(names and mains)
    return False


def is_skipped_assignment(node):
    """`__all__ = …` and version assignments (`__version__`, `VERSION`, `version_info`, …)."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    else:
        return False
    names = []
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                names.append(n.id)
            elif isinstance(n, ast.Attribute):
                names.append(n.attr)
    return any(n == "__all__" or "version" in n.lower() for n in names)


def has_yield(func):
    """Whether `func` is a generator (a `yield` of its own, not of a nested function)."""
    todo = list(func.body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        todo.extend(ast.iter_child_nodes(n))
    return False


class Context:
    def __init__(self, scope="", in_function=False, generator=False, in_while=False):
        self.scope = scope
        self.in_function = in_function
        self.generator = generator
        self.in_while = in_while

    def but(self, **kw):
        c = Context(self.scope, self.in_function, self.generator, self.in_while)
        for k, v in kw.items():
            setattr(c, k, v)
        return c


class FileMutations:
    def __init__(self, rel, src):
        self.rel = rel
        self.src = src
        self.starts = [0] + [m.end() for m in re.finditer(rb"\n", src)]
        self.out = []

    # Positions ------------------------------------------------------------------------------

    def pos(self, lineno, col):
        return self.starts[lineno - 1] + col

    def span(self, node):
        return self.pos(node.lineno, node.col_offset), self.pos(node.end_lineno, node.end_col_offset)

    def line_start(self, lineno):
        return self.starts[lineno - 1]

    def line_end(self, lineno):
        """The offset just after line `lineno`'s newline (or the end of the file)."""
        return self.starts[lineno] if lineno < len(self.starts) else len(self.src)

    def line(self, lineno):
        return self.src[self.line_start(lineno):self.line_end(lineno)]

    def text(self, a, b):
        return self.src[a:b].decode("utf-8")

    def alone_on_lines(self, node):
        """Whether `node` (a statement) has its lines to itself, a trailing comment aside."""
        a, b = self.span(node)
        before = self.src[self.line_start(node.lineno):a]
        after = self.src[b:self.line_end(node.end_lineno)]
        return before.strip() == b"" and (after.strip() == b"" or after.strip().startswith(b"#"))

    def tokens(self, a, b):
        """The tokens between offsets `a` and `b` other than brackets, blanks, line continuations
        and comments, as (start, end, bytes); None when something else is there."""
        s, i, out = self.src, a, []
        while i < b:
            c = s[i:i + 1]
            if c in (b" ", b"\t", b"\f", b"\r", b"\n", b"(", b")"):
                i += 1
            elif c == b"\\":
                i += 1
            elif c == b"#":
                nl = s.find(b"\n", i, b)
                i = b if nl < 0 else nl
            else:
                m = WORD.match(s, i, b) or OPERATOR.match(s, i, b)
                if not m:
                    return None
                out.append((m.start(), m.end(), m.group()))
                i = m.end()
        return out

    def operator_between(self, left, right, expected):
        """The span of the operator tokens `expected` between the nodes `left` and `right`."""
        toks = self.tokens(self.span(left)[1], self.span(right)[0])
        if toks is None or [t[2].decode() for t in toks] != expected:
            return None
        return toks[0][0], toks[-1][1]

    # Candidates -----------------------------------------------------------------------------

    def add(self, kind, start, end, replacement, ctx):
        original = self.text(start, end)
        if original == replacement:
            return
        self.out.append({
            "file": self.rel, "kind": kind, "line": bisect.bisect_right(self.starts, start),
            "start": start, "end": end, "original": original, "replacement": replacement,
            "scope": ctx.scope,
        })

    def comparison(self, node, ctx):
        operands = [node.left] + list(node.comparators)
        for i, op in enumerate(node.ops):
            where = self.operator_between(operands[i], operands[i + 1], TOKENS[type(op)])
            if where is None:
                continue
            self.add("comparison", where[0], where[1], FLIP[type(op)], ctx)
            if type(op) in BOUND:
                self.add("off_by_one", where[0], where[1], BOUND[type(op)], ctx)

    def boolean(self, node, ctx):
        word = "and" if isinstance(node.op, ast.And) else "or"
        other = "or" if word == "and" else "and"
        for left, right in zip(node.values, node.values[1:]):
            where = self.operator_between(left, right, [word])
            if where is not None:
                self.add("boolean", where[0], where[1], other, ctx)

    def dropped_not(self, node, ctx):
        a = self.span(node)[0]
        b = self.span(node.operand)[0]
        if self.src[a:a + 3] != b"not":
            return
        end = a + 3
        while end < b and self.src[end:end + 1] in (b" ", b"\t"):
            end += 1
        self.add("boolean", a, end, "", ctx)

    def bound(self, node, ctx):
        """A slice bound or a `range` argument: ±1 on it, or drop its own `± 1`."""
        if isinstance(node, ast.Starred):
            return
        a, b = self.span(node)
        if is_int(node):
            if ast.literal_eval(self.text(a, b)) != node.value:
                return
            self.add("off_by_one", a, b, str(node.value + 1), ctx)
            if node.value >= 1:
                self.add("off_by_one", a, b, str(node.value - 1), ctx)
            return
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and is_int(node.operand)
                and node.operand.value >= 1):
            # `-n`: n + 1 and n - 1 (but never `-0`).
            ia, ib = self.span(node.operand)
            self.add("off_by_one", ia, ib, str(node.operand.value + 1), ctx)
            if node.operand.value >= 2:
                self.add("off_by_one", ia, ib, str(node.operand.value - 1), ctx)
            return
        if (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))
                and is_int(node.right) and node.right.value == 1):
            toks = self.tokens(self.span(node.left)[1], self.span(node.right)[0])
            if toks and len(toks) == 1 and toks[0][2] in (b"+", b"-"):
                self.add("off_by_one", a, b, self.text(a, toks[0][0]).rstrip(), ctx)
            return
        text = self.text(a, b)
        if "\n" in text:
            return
        tight = isinstance(node, TIGHT) or (isinstance(node, ast.BinOp) and isinstance(node.op, TIGHT_OPS))
        base = text if tight else "(" + text + ")"
        self.add("off_by_one", a, b, base + " + 1", ctx)
        self.add("off_by_one", a, b, base + " - 1", ctx)

    def call(self, node, ctx):
        name = node.func.id if isinstance(node.func, ast.Name) else (
            node.func.attr if isinstance(node.func, ast.Attribute) else "")
        if name == "range" and isinstance(node.func, ast.Name):
            for arg in node.args[:2]:
                self.bound(arg, ctx)
        if len(node.args) >= 2 and name not in NO_SWAP:
            first, second = node.args[0], node.args[1]
            if isinstance(first, ast.Starred) or isinstance(second, ast.Starred):
                return
            a0, b0 = self.span(first)
            a1, b1 = self.span(second)
            t0, t1 = self.text(a0, b0), self.text(a1, b1)
            if t0.strip() != t1.strip():
                self.add("swapped_arguments", a0, b1, t1 + self.text(b0, a1) + t0, ctx)

    def constant(self, node, ctx):
        if type(node.value) is bool:
            a, b = self.span(node)
            if self.text(a, b) == str(node.value):
                self.add("constant", a, b, str(not node.value), ctx)
        elif is_int(node):
            a, b = self.span(node)
            if ast.literal_eval(self.text(a, b)) != node.value:
                return
            self.add("constant", a, b, str({0: 1, 1: 0}.get(node.value, node.value + 1)), ctx)

    def branches(self, node, ctx):
        """`dropped_branch` for an `if`: its body becomes `pass`, its `else:` or an `elif`
        goes (whole lines)."""
        body = node.body
        if not (len(body) == 1 and isinstance(body[0], ast.Pass)):
            first, last = body[0], body[-1]
            if first.lineno > node.test.end_lineno and self.alone_on_lines(first) and self.alone_on_lines(last):
                a, b = self.line_start(first.lineno), self.line_end(last.end_lineno)
                indent = re.match(rb"[ \t]*", self.line(first.lineno)).group().decode()
                newline = "\n" if self.src[b - 1:b] == b"\n" else ""
                self.add("dropped_branch", a, b, indent + "pass" + newline, ctx)
            elif first.lineno == node.test.end_lineno:
                a, b = self.span(first)[0], self.span(last)[1]
                self.add("dropped_branch", a, b, "pass", ctx)
        if not node.orelse:
            return
        header_indent = re.match(rb"[ \t]*", self.line(node.lineno)).group()
        after_body = body[-1].end_lineno + 1
        nxt = node.orelse[0]
        if isinstance(nxt, ast.If) and len(node.orelse) == 1 and self.keyword_line(nxt.lineno, header_indent, b"elif"):
            # Drop the `elif` clause up to the next clause (its own `elif`/`else`) or its end.
            if nxt.orelse:
                follow = self.clause_line(nxt, header_indent)
                if follow is None:
                    return
                end = self.line_start(follow)
            else:
                if not self.alone_on_lines(nxt.body[-1]):
                    return
                end = self.line_end(nxt.body[-1].end_lineno)
            self.add("dropped_branch", self.line_start(nxt.lineno), end, "", ctx)
            return
        else_line = next((ln for ln in range(after_body, nxt.lineno + 1)
                          if self.keyword_line(ln, header_indent, b"else")), None)
        if else_line is None:
            return
        last = node.orelse[-1]
        tail = self.src[self.span(last)[1]:self.line_end(last.end_lineno)].strip()
        if tail and not tail.startswith(b"#"):
            return
        self.add("dropped_branch", self.line_start(else_line), self.line_end(last.end_lineno), "", ctx)

    def keyword_line(self, lineno, indent, word):
        line = self.line(lineno)
        if not line.startswith(indent):
            return False
        rest = line[len(indent):]
        return re.match(word + rb"\s*:" if word == b"else" else word + rb"\b", rest) is not None

    def clause_line(self, node, indent):
        """The line of the `elif`/`else` that follows the body of `node` (an `if` or `elif`)."""
        nxt = node.orelse[0]
        for ln in range(node.body[-1].end_lineno + 1, nxt.lineno + 1):
            if self.keyword_line(ln, indent, b"elif") or self.keyword_line(ln, indent, b"else"):
                return ln
        return None

    def dropped_return(self, block, i, ctx):
        ret = block[i]
        if not ctx.in_function or ctx.generator or ctx.in_while or i != len(block) - 1:
            return
        if ret.value is None or (isinstance(ret.value, ast.Constant) and ret.value.value is None):
            return
        a, b = self.span(ret)
        if len(block) > 1 and self.alone_on_lines(ret):
            self.add("dropped_return", self.line_start(ret.lineno), self.line_end(ret.end_lineno), "", ctx)
        else:
            self.add("dropped_return", a, b, "pass", ctx)

    # Walking --------------------------------------------------------------------------------

    def visit(self, node, ctx):
        if isinstance(node, ast.If) and is_skipped_if(node):
            return
        if isinstance(node, ast.JoinedStr) or is_skipped_assignment(node):
            return
        inner = ctx
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = ctx.but(scope=(ctx.scope + "." if ctx.scope else "") + node.name, in_function=True,
                            generator=has_yield(node), in_while=False)
        elif isinstance(node, ast.ClassDef):
            inner = ctx.but(scope=(ctx.scope + "." if ctx.scope else "") + node.name, in_function=False,
                            generator=False, in_while=False)
        elif isinstance(node, ast.Lambda):
            inner = ctx.but(in_function=False)
        elif isinstance(node, ast.While):
            inner = ctx.but(in_while=True)

        if isinstance(node, ast.Compare):
            self.comparison(node, ctx)
        elif isinstance(node, ast.BoolOp):
            self.boolean(node, ctx)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.dropped_not(node, ctx)
        elif isinstance(node, ast.Slice):
            for b in (node.lower, node.upper):
                if b is not None:
                    self.bound(b, ctx)
        elif isinstance(node, ast.Call):
            self.call(node, ctx)
        elif isinstance(node, ast.Constant):
            self.constant(node, ctx)
        elif isinstance(node, ast.If):
            self.branches(node, ctx)

        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns", "type_comment", "type_params"):
                continue
            if isinstance(value, list):
                if value and all(isinstance(v, ast.stmt) for v in value):
                    self.block(value, inner)
                else:
                    for v in value:
                        if isinstance(v, ast.AST):
                            self.visit(v, inner)
            elif isinstance(value, ast.AST):
                self.visit(value, inner)

    def block(self, stmts, ctx):
        for i, s in enumerate(stmts):
            if isinstance(s, ast.Return):
                self.dropped_return(stmts, i, ctx)
            self.visit(s, ctx)


def mutated(src, m):
    return src[:m["start"]] + m["replacement"].encode("utf-8") + src[m["end"]:]


def compiles(src, rel):
    try:
        compile(src, rel, "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def file_candidates(rel, src):
    if src.startswith(b"\xef\xbb\xbf") or re.search(rb"\r(?!\n)", src):
        return []
    try:
        tree = ast.parse(src, rel)
        compile(tree, rel, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    f = FileMutations(rel, src)
    try:
        f.block(tree.body, Context())
    except RecursionError:
        return []
    # Two edits that make the same file are one candidate, of the kind ranked first.
    seen, out = set(), []
    for m in sorted(f.out, key=lambda m: (KIND_RANK.index(m["kind"]), m["start"], m["end"], m["replacement"])):
        new = mutated(src, m)
        key = hashlib.sha256(new).digest()
        if key in seen or not compiles(new, rel):
            continue
        seen.add(key)
        out.append(m)
    return out


def main():
    warnings.simplefilter("ignore")
    root = sys.argv[1]
    rels = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in filenames:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                if not is_test_file(rel):
                    rels.append(rel)
    out = []
    for rel in sorted(rels):
        with open(os.path.join(root, rel), "rb") as fh:
            out.extend(file_candidates(rel, fh.read()))
    out.sort(key=lambda m: (m["file"], m["start"], m["kind"], m["end"], m["replacement"]))
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
