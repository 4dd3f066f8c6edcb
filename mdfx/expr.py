"""A restricted expression grammar: the only way mdfx evaluates text from a model.

DESIGN rule 6: no ``eval``/``exec`` of anything from a file. Python's ``ast``
module only *parses* the text; we then accept a small whitelist of node types
(numbers, names, ``+ - * / ** @``, unary minus, comparisons, parentheses and a
fixed set of functions) and evaluate the tree ourselves with numpy. Anything
else (attribute access, subscripts, lambdas, strings, calls of other names)
is refused with an error naming the construct.

The same trees are lowered by the LLVM and ONNX backends, so the op table's
forward and derivative expressions are written once, as data.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from functools import lru_cache

import numpy as np

from mdfx import limits
from mdfx.errors import LimitError, SchemaError

#: Functions an expression may call, with their numpy meaning.
FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "where": np.where,
    "sign": np.sign,
}

_BINOPS: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
    ast.MatMult: np.matmul,
}
_CMPOPS: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
}


def _check(node: ast.AST, text: str) -> None:
    """Refuse every construct outside the grammar, naming it."""
    if isinstance(node, ast.Expression):
        _check(node.body, text)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise SchemaError(f"expression {text!r}: only numeric constants are allowed, got {node.value!r}")
    elif isinstance(node, ast.Name):
        pass
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise SchemaError(f"expression {text!r}: operator {type(node.op).__name__} is not allowed")
        _check(node.left, text)
        _check(node.right, text)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise SchemaError(f"expression {text!r}: operator {type(node.op).__name__} is not allowed")
        _check(node.operand, text)
    elif isinstance(node, ast.Compare):
        if len(node.ops) != 1 or type(node.ops[0]) not in _CMPOPS:
            raise SchemaError(f"expression {text!r}: only single comparisons > >= < <= are allowed")
        _check(node.left, text)
        _check(node.comparators[0], text)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = ast.unparse(node.func)
            raise SchemaError(
                f"expression {text!r}: call of {shown!r} is not allowed; "
                f"allowed functions: {', '.join(sorted(FUNCTIONS))}"
            )
        if node.keywords:
            raise SchemaError(f"expression {text!r}: keyword arguments are not allowed")
        for arg in node.args:
            _check(arg, text)
    else:
        raise SchemaError(
            f"expression {text!r}: {type(node).__name__} is not allowed "
            "(numbers, names, + - * / ** @, comparisons and whitelisted functions only)"
        )


def _shown(text: str) -> str:
    """The expression as error messages quote it: long ones cut, so the message stays one line."""
    return repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text)} characters)"


def _depth(tree: ast.AST) -> int:
    """Nesting depth of ``tree``, walked without recursion (the tree may be deep)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        # only expressions nest (operators and Load contexts are leaves of their node)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))
    return deepest


def parse(text: str) -> ast.expr:
    """Parse and validate ``text``; return the expression tree (never executed by Python).

    Expressions longer than ``mdfx.limits`` ``max_expression_length`` characters or
    nested deeper than ``max_expression_depth`` are refused before the recursive
    checks and evaluation below could exhaust the stack.
    """
    if not isinstance(text, str):
        raise SchemaError(f"expression {text!r:.80}: expected text, got {type(text).__name__}")
    return _parse(text, limits.current())


@lru_cache(maxsize=1024)
def _parse(text: str, lim: limits.Limits) -> ast.expr:
    """:func:`parse` after the type check, cached per text and limits (Limits is frozen)."""
    if len(text) > lim.max_expression_length:
        raise LimitError(f"expression {_shown(text)} is longer than {lim.max_expression_length} characters; "
                         "raise it with mdfx.limits.set(max_expression_length=...)")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SchemaError(f"expression {_shown(text)} is not valid: {exc.msg}") from None
    except ValueError as exc:  # e.g. a NUL character
        raise SchemaError(f"expression {_shown(text)} is not valid: {exc}") from None
    except (RecursionError, MemoryError) as exc:  # CPython's parser on absurd nesting
        raise LimitError(f"expression {_shown(text)} is nested too deeply to parse "
                         f"({type(exc).__name__})") from None
    depth = _depth(tree)
    if depth > lim.max_expression_depth + 1:  # +1: the Expression wrapper
        raise LimitError(f"expression {_shown(text)} is nested {depth - 1} levels deep; the limit is "
                         f"{lim.max_expression_depth} (raise it with mdfx.limits.set(max_expression_depth=...))")
    _check(tree, text)
    return tree.body


def names(text: str) -> set[str]:
    """The variable names an expression refers to (function names excluded)."""
    tree = parse(text)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate(text: str, env: Mapping[str, object]) -> np.ndarray:
    """Evaluate ``text`` over ``env`` (name -> number or array) with numpy."""
    return _eval(parse(text), env, text)


def _eval(node: ast.expr, env: Mapping[str, object], text: str) -> np.ndarray:
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise SchemaError(f"expression {text!r}: unknown name {node.id!r}")
        return np.asarray(env[node.id], dtype=np.float64)
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, env, text), _eval(node.right, env, text))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Compare):
        op = _CMPOPS[type(node.ops[0])]
        left = _eval(node.left, env, text)
        return op(left, _eval(node.comparators[0], env, text)).astype(np.float64)
    if isinstance(node, ast.Call):
        args = [_eval(a, env, text) for a in node.args]
        return FUNCTIONS[node.func.id](*args)
    raise SchemaError(f"expression {text!r}: cannot evaluate {type(node).__name__}")
