"""Python's own parser as the oracle for blockwise's expression parser.

Reads a JSON list of expressions on stdin and prints one JSON object a line:
{"canon": ..., "spans": [[start, end], ...]} when `ast.parse(text, mode="eval")`
and the compiler accept the expression, {"error": message} when they raise
SyntaxError, and
{"unsupported": node} when it parses to something the language does not have.
"canon" is the tree printed the way blockwise's `Expr` Display prints (fully
parenthesised, literals as repr writes them); "spans" are every node's byte offsets
into the UTF-8 text, in the preorder that `oracle_tests.rs` walks. Run by
`oracle_tests.rs`; it needs Python 3.9 or later (spans of keywords and slices).
"""

import ast
import json
import sys
import unicodedata
import warnings

BINARY = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
}
UNARY = {ast.USub: "-", ast.UAdd: "+", ast.Invert: "~"}
COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
BOOL = {ast.And: "and", ast.Or: "or"}


class Unsupported(Exception):
    pass


def string(value):
    out = ["'"]
    for c in value:
        if c == "\\":
            out.append("\\\\")
        elif c == "'":
            out.append("\\'")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif unicodedata.category(c) == "Cc":
            out.append("\\x%02x" % ord(c))
        else:
            out.append(c)
    out.append("'")
    return "".join(out)


def constant(value):
    if value is True or value is False or value is None:
        return repr(value)
    if value is Ellipsis:
        return "..."
    if isinstance(value, int):
        if value > 2**64 - 1:
            raise Unsupported("integer above 2**64 - 1")
        return str(value)
    if isinstance(value, (float, complex)):
        return repr(value)
    if isinstance(value, str):
        return string(value)
    raise Unsupported(type(value).__name__)


def items(elts):
    text = ", ".join(canon(e) for e in elts)
    return text + "," if len(elts) == 1 else text


def canon(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return constant(node.value)
    if isinstance(node, ast.Tuple):
        return "(" + items(node.elts) + ")"
    if isinstance(node, ast.List):
        return "[" + ", ".join(canon(e) for e in node.elts) + "]"
    if isinstance(node, ast.Attribute):
        return canon(node.value) + "." + node.attr
    if isinstance(node, ast.Call):
        parts = [canon(a) for a in node.args]
        for k in node.keywords:
            if k.arg is None:
                raise Unsupported("**kwargs")
            parts.append(k.arg + "=" + canon(k.value))
        return canon(node.func) + "(" + ", ".join(parts) + ")"
    if isinstance(node, ast.Subscript):
        index = node.slice
        if isinstance(index, ast.Tuple) and index.elts:
            inner = items(index.elts)
        else:
            inner = canon(index)
        return canon(node.value) + "[" + inner + "]"
    if isinstance(node, ast.Slice):
        text = (canon(node.lower) if node.lower else "") + ":"
        text += canon(node.upper) if node.upper else ""
        if node.step:
            text += ":" + canon(node.step)
        return text
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return "(not " + canon(node.operand) + ")"
        return "(" + UNARY[type(node.op)] + canon(node.operand) + ")"
    if isinstance(node, ast.BinOp):
        return "(" + canon(node.left) + " " + BINARY[type(node.op)] + " " + canon(node.right) + ")"
    if isinstance(node, ast.BoolOp):
        return "(" + (" " + BOOL[type(node.op)] + " ").join(canon(v) for v in node.values) + ")"
    if isinstance(node, ast.Compare):
        text = "(" + canon(node.left)
        for op, right in zip(node.ops, node.comparators):
            if type(op) not in COMPARE:
                raise Unsupported(type(op).__name__)
            text += " " + COMPARE[type(op)] + " " + canon(right)
        return text + ")"
    if isinstance(node, ast.IfExp):
        return "(" + canon(node.body) + " if " + canon(node.test) + " else " + canon(node.orelse) + ")"
    raise Unsupported(type(node).__name__)


def children(node):
    if isinstance(node, (ast.Tuple, ast.List)):
        return list(node.elts)
    if isinstance(node, ast.Attribute):
        return [node.value]
    if isinstance(node, ast.Call):
        return [node.func] + list(node.args) + list(node.keywords)
    if isinstance(node, ast.keyword):
        return [node.value]
    if isinstance(node, ast.Subscript):
        return [node.value, node.slice]
    if isinstance(node, ast.Slice):
        return [p for p in (node.lower, node.upper, node.step) if p is not None]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    if isinstance(node, ast.Compare):
        return [node.left] + list(node.comparators)
    if isinstance(node, ast.IfExp):
        return [node.body, node.test, node.orelse]
    return []


def spans(node, line_starts, out):
    start = line_starts[node.lineno - 1] + node.col_offset
    end = line_starts[node.end_lineno - 1] + node.end_col_offset
    out.append([start, end])
    for child in children(node):
        spans(child, line_starts, out)
    return out


def main():
    warnings.simplefilter("ignore")
    for text in json.load(sys.stdin):
        try:
            tree = ast.parse(text, mode="eval")
            # Some errors (a repeated keyword argument) are found only by the compiler.
            compile(tree, "<expression>", "eval")
        except (SyntaxError, ValueError) as e:
            print(json.dumps({"error": str(e)}))
            continue
        # Python's columns are UTF-8 byte offsets within a line.
        line_starts = [0]
        for line in text.encode("utf-8").split(b"\n"):
            line_starts.append(line_starts[-1] + len(line) + 1)
        try:
            result = {"canon": canon(tree.body), "spans": spans(tree.body, line_starts, [])}
        except Unsupported as e:
            result = {"unsupported": str(e)}
        print(json.dumps(result))


if __name__ == "__main__":
    main()
