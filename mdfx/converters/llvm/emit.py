"""The IR-building vocabulary every rule uses: constants, memory, counted loops, math, expressions.

An :class:`Emitter` wraps one llvmlite ``IRBuilder`` inside one kernel
function and works in one float type (``double`` or ``float``). Rules in
:mod:`mdfx.converters.llvm.rules` only speak this vocabulary, so they read
like the numpy they mirror: ``with e.loop(size) as j: e.store(f(e.load(x, j)), y, j)``.

Expressions of :mod:`mdfx.expr` (the op table's ``expr``/``dexpr`` and the
loss rules) are lowered here, node by node, to scalar IR: no Python ever runs
text from a model.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from llvmlite import ir

from mdfx import expr as mexpr
from mdfx.errors import UnsupportedError

I32 = ir.IntType(32)
I64 = ir.IntType(64)
F64 = ir.DoubleType()
FLOAT_TYPES: dict[str, ir.Type] = {"float64": ir.DoubleType(), "float32": ir.FloatType()}

#: mdfx.expr function -> LLVM intrinsic stem (``llvm.<stem>.f64``). ``maximum``/``minimum``
#: are the NaN-propagating intrinsics, as numpy's are; ``tanh`` has no intrinsic in every
#: LLVM, so it is a libm call (see :data:`_LIBM`).
_INTRINSICS = {"exp": "exp", "log": "log", "sqrt": "sqrt", "abs": "fabs", "sin": "sin", "cos": "cos",
               "maximum": "maximum", "minimum": "minimum", "pow": "pow"}
_LIBM = {"tanh": ("tanh", "tanhf"), "erf": ("erf", "erff"), "log1p": ("log1p", "log1pf")}
_ARITY = {"maximum": 2, "minimum": 2, "pow": 2, "where": 3}
_CMP = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<="}

#: Independent vector partial sums per dot product (see Emitter.dot).
DOT_ACCUMULATORS = 2

# Scratch arrays up to this size live on the stack (where LLVM can keep small ones in
# registers); larger ones are malloc'd, so a big minibatch cannot overflow a thread's stack.
STACK_LIMIT_BYTES = 64 * 1024


class Emitter:
    """Builds the body of one kernel function in the float type ``fty``.

    The function gets an ``entry`` block that holds only allocas (so mem2reg/SROA
    can promote them) and jumps to ``body``, where :attr:`b` starts.
    """

    def __init__(self, module: ir.Module, func: ir.Function, fty: ir.Type) -> None:
        self.module = module
        self.func = func
        self.fty = fty
        entry = func.append_basic_block("entry")
        body = func.append_basic_block("body")
        self._entry = ir.IRBuilder(entry)
        self._entry.position_before(self._entry.branch(body))
        self.b = ir.IRBuilder(body)
        self.heap: list[ir.Value] = []  #: malloc'd scratch, freed by :meth:`free_heap`

    @property
    def entry(self) -> ir.IRBuilder:
        """A builder at the end of the entry block: values placed here dominate the whole function."""
        return self._entry

    # --- constants and conversions ------------------------------------------------

    def const(self, value: float) -> ir.Constant:
        return ir.Constant(self.fty, float(value))

    @staticmethod
    def i64(value: int) -> ir.Constant:
        return ir.Constant(I64, int(value))

    def to_float(self, value: ir.Value) -> ir.Value:
        """An i64 as the working float type (a count, a step number)."""
        return self.b.sitofp(value, self.fty)

    def narrow(self, value: ir.Value) -> ir.Value:
        """A double as the working float type (scalars computed in double, e.g. Adam's corrections)."""
        return value if self.fty == F64 else self.b.fptrunc(value, self.fty)

    # --- memory ---------------------------------------------------------------------

    def var(self, init: ir.Value, name: str = "acc") -> ir.Value:
        """A scalar variable (an entry-block alloca; mem2reg turns it into registers)."""
        ptr = self._entry.alloca(init.type, name=_ir_name(name))
        self.b.store(init, ptr)
        return ptr

    def scratch(self, count: int, name: str, on_heap: bool) -> ir.Value:
        """A float array of ``count`` elements, alive for the whole kernel call."""
        ptr_ty = self.fty.as_pointer()
        name = _ir_name(name)
        if not on_heap:
            return self._entry.bitcast(self._entry.alloca(ir.ArrayType(self.fty, count), name=name), ptr_ty)
        malloc = self._function("malloc", ir.FunctionType(ir.IntType(8).as_pointer(), [I64]))
        itemsize = 8 if self.fty == F64 else 4
        raw = self._entry.call(malloc, [self.i64(count * itemsize)], name=name)
        self.heap.append(raw)
        return self._entry.bitcast(raw, ptr_ty)

    def heap_ok(self) -> ir.Value | None:
        """An i1 that is true when every malloc of :meth:`scratch` succeeded (None: nothing on the heap)."""
        ok = None
        for raw in self.heap:
            nonnull = self.b.icmp_unsigned("!=", raw, ir.Constant(raw.type, None))
            ok = nonnull if ok is None else self.b.and_(ok, nonnull)
        return ok

    def free_heap(self) -> None:
        free = self._function("free", ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()]))
        for raw in self.heap:
            self.b.call(free, [raw])

    def at(self, ptr: ir.Value, index: ir.Value | int) -> ir.Value:
        """``&ptr[index]``."""
        idx = self.i64(index) if isinstance(index, int) else index
        return self.b.gep(ptr, [idx], inbounds=True)

    def load(self, ptr: ir.Value, index: ir.Value | int) -> ir.Value:
        return self.b.load(self.at(ptr, index))

    def store(self, value: ir.Value, ptr: ir.Value, index: ir.Value | int) -> None:
        self.b.store(value, self.at(ptr, index))

    def row(self, ptr: ir.Value, r: ir.Value | int, width: int) -> ir.Value:
        """``&ptr[r * width]``: row ``r`` of a row-major (rows, width) array."""
        if isinstance(r, int):
            return self.at(ptr, r * width)
        return self.at(ptr, self.b.mul(r, self.i64(width), flags=["nuw", "nsw"]))

    def add_to(self, ptr: ir.Value, value: ir.Value) -> None:
        """``*ptr += value`` for a :meth:`var`."""
        self.b.store(self.b.fadd(self.b.load(ptr), value), ptr)

    def dot(self, a: ir.Value, b: ir.Value, n: int) -> ir.Value:
        """sum(a[j] * b[j] for j < n) over two contiguous rows.

        Written with explicit vectors: :data:`DOT_ACCUMULATORS` independent vector
        partial sums, then a fixed pairwise reduction. A left-to-right scalar sum is one
        chain of n dependent adds (latency-bound), and left to LLVM the row loop around
        a dot is vectorised with gathers. Like BLAS this rounds differently from a
        left-to-right sum (by a few ulps); no fast-math flag is involved, so every other
        operation keeps numpy's exact order.
        """
        b_ = self.b
        width = 32 // (8 if self.fty == F64 else 4)  # one 256-bit register
        step = width * DOT_ACCUMULATORS
        if n < step:
            total = self.var(self.const(0.0), "dot")
            with self.loop(n, "j") as j:
                self.add_to(total, b_.fmul(self.load(a, j), self.load(b, j)))
            return b_.load(total)
        vty = ir.VectorType(self.fty, width)
        accs = [self.var(ir.Constant(vty, [0.0] * width), f"dot{k}") for k in range(DOT_ACCUMULATORS)]

        def vload(ptr: ir.Value, j: ir.Value) -> ir.Value:
            return b_.load(b_.bitcast(self.at(ptr, j), vty.as_pointer()), align=8 if self.fty == F64 else 4)

        with self.loop(n // step, "jb") as jb:
            base = b_.mul(jb, self.i64(step), flags=["nuw", "nsw"])
            for k, acc in enumerate(accs):
                j = b_.add(base, self.i64(k * width), flags=["nuw", "nsw"])
                self.add_to(acc, b_.fmul(vload(a, j), vload(b, j)))
        done = n - n % step
        for k, j in enumerate(range(done, n - (n - done) % width, width)):  # whole vectors left over
            self.add_to(accs[k], b_.fmul(vload(a, self.i64(j)), vload(b, self.i64(j))))
        vectors = [b_.load(acc) for acc in accs]
        while len(vectors) > 1:
            vectors = [b_.fadd(vectors[k], vectors[k + 1]) for k in range(0, len(vectors), 2)]
        lanes = [b_.extract_element(vectors[0], ir.Constant(I32, k)) for k in range(width)]
        lanes += [b_.fmul(self.load(a, j), self.load(b, j)) for j in range(n - (n - done) % width, n)]
        while len(lanes) > 1:
            lanes = [b_.fadd(lanes[k], lanes[k + 1]) if k + 1 < len(lanes) else lanes[k]
                     for k in range(0, len(lanes), 2)]
        return lanes[0]

    # --- control flow ----------------------------------------------------------------

    @contextmanager
    def loop(self, count: ir.Value | int, name: str = "i", start: ir.Value | int = 0) -> Iterator[ir.Value]:
        """``for i in range(start, count)``; a constant count of 1 from 0 emits the body once, loop-free."""
        with loop(self.b, count, name, start) as idx:
            yield idx

    # --- math --------------------------------------------------------------------------

    def _function(self, name: str, fnty: ir.FunctionType) -> ir.Function:
        existing = self.module.globals.get(name)
        if existing is not None:
            return existing
        return ir.Function(self.module, fnty, name)

    def math(self, name: str, *args: ir.Value) -> ir.Value:
        """Call a math function of the working type: an LLVM intrinsic, else libm."""
        return self._math(name, self.fty, args)

    def math64(self, name: str, *args: ir.Value) -> ir.Value:
        """:meth:`math` in double whatever the working type."""
        return self._math(name, F64, args)

    def _math(self, name: str, fty: ir.Type, args: tuple[ir.Value, ...]) -> ir.Value:
        fnty = ir.FunctionType(fty, [fty] * len(args))
        if name in _INTRINSICS:
            suffix = "f64" if fty == F64 else "f32"
            fn = self._function(f"llvm.{_INTRINSICS[name]}.{suffix}", fnty)
        elif name in _LIBM:
            fn = self._function(_LIBM[name][0 if fty == F64 else 1], fnty)
        else:
            raise UnsupportedError(f"the LLVM backend has no lowering for function {name!r}")
        return self.b.call(fn, list(args))

    def maximum(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.math("maximum", a, b)

    # --- expressions -----------------------------------------------------------------------

    def expr(self, text: str, env: Mapping[str, ir.Value | float]) -> ir.Value:
        """Lower an :mod:`mdfx.expr` expression to scalar IR; ``env`` maps names to values or numbers."""
        return _Lowering(self, env, text).value(mexpr.parse(text))


class _Lowering:
    """One expression tree -> IR, node by node, with numpy's meaning for each node."""

    def __init__(self, e: Emitter, env: Mapping[str, ir.Value | float], text: str) -> None:
        self.e = e
        self.env = env
        self.text = text

    def value(self, node: ast.expr) -> ir.Value:
        e, b = self.e, self.e.b
        if isinstance(node, ast.Constant):
            return e.const(node.value)
        if isinstance(node, ast.Name):
            if node.id not in self.env:
                raise UnsupportedError(f"expression {self.text!r}: unknown name {node.id!r}; "
                                       f"known: {', '.join(sorted(self.env))}")
            v = self.env[node.id]
            return v if isinstance(v, ir.Value) else e.const(v)
        if isinstance(node, ast.UnaryOp):
            v = self.value(node.operand)
            return b.fneg(v) if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Compare):
            # numpy gives 0.0/1.0 where a comparison is used as a number
            return b.select(self.condition(node), e.const(1.0), e.const(0.0))
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise UnsupportedError(f"expression {self.text!r}: cannot lower {type(node).__name__}")

    def condition(self, node: ast.expr) -> ir.Value:
        """An i1: a comparison directly, anything else by numpy truthiness (non-zero, NaN true)."""
        b = self.e.b
        if isinstance(node, ast.Compare):
            return b.fcmp_ordered(_CMP[type(node.ops[0])], self.value(node.left), self.value(node.comparators[0]))
        return b.fcmp_unordered("!=", self.value(node), self.e.const(0.0))

    def binop(self, node: ast.BinOp) -> ir.Value:
        e, b = self.e, self.e.b
        if isinstance(node.op, ast.Mult) and (_is_zero(node.left) or _is_zero(node.right)):
            # The op table writes ``c + 0 * x`` only to give a constant derivative x's shape
            # (numpy's ``full_like``); a scalar kernel needs no shape, and folding keeps the
            # spec's value where x is inf or NaN.
            return e.const(0.0)
        if isinstance(node.op, ast.Pow) and _small_int(node.right) is not None:
            return self.power(self.value(node.left), _small_int(node.right))
        if isinstance(node.op, ast.MatMult):
            raise UnsupportedError(f"expression {self.text!r}: '@' is not elementwise; "
                                   "the LLVM backend lowers elementwise expressions only")
        left, right = self.value(node.left), self.value(node.right)
        if isinstance(node.op, ast.Pow):
            return e.math("pow", left, right)
        op = {ast.Add: b.fadd, ast.Sub: b.fsub, ast.Mult: b.fmul, ast.Div: b.fdiv}[type(node.op)]
        return op(left, right)

    def power(self, base: ir.Value, n: int) -> ir.Value:
        """``base ** n`` for an integer n by square-and-multiply (``x ** 2`` is exactly ``x * x``, as numpy)."""
        e, b = self.e, self.e.b
        if n == 0:
            return e.const(1.0)
        result, square, k = None, base, abs(n)
        while k:
            if k & 1:
                result = square if result is None else b.fmul(result, square)
            k >>= 1
            if k:
                square = b.fmul(square, square)
        return b.fdiv(e.const(1.0), result) if n < 0 else result

    def call(self, node: ast.Call) -> ir.Value:
        e, b = self.e, self.e.b
        name = node.func.id
        want = _ARITY.get(name, 1)
        if len(node.args) != want:
            raise UnsupportedError(f"expression {self.text!r}: {name} takes {want} argument(s), "
                                   f"got {len(node.args)}")
        if name == "where":
            cond = self.condition(node.args[0])
            return b.select(cond, self.value(node.args[1]), self.value(node.args[2]))
        args = [self.value(a) for a in node.args]
        if name == "sign":
            # numpy: 1 / -1, and the argument itself for 0, -0 and NaN
            x = args[0]
            neg = b.select(b.fcmp_ordered("<", x, e.const(0.0)), e.const(-1.0), x)
            return b.select(b.fcmp_ordered(">", x, e.const(0.0)), e.const(1.0), neg)
        return e.math(name, *args)


def _ir_name(name: str) -> str:
    """A value name safe to print in IR: node names come from model files, so keep plain characters."""
    return re.sub(r"[^A-Za-z0-9_.:>-]", "_", name)[:64]


def _is_zero(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == 0


def _small_int(node: ast.expr) -> int | None:
    """The exponent when it is an integer constant (possibly negated) of modest size."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and float(node.value).is_integer() and abs(node.value) <= 64:
        return sign * int(node.value)
    return None


@contextmanager
def loop(b: ir.IRBuilder, count: ir.Value | int, name: str = "i", start: ir.Value | int = 0) -> Iterator[ir.Value]:
    """``for i in range(start, count)`` with a phi counter, at ``b``'s position (every emitter's loop);
    a constant count of 1 from 0 emits the body once, loop-free."""
    i64 = ir.IntType(64)
    if isinstance(count, int) and count == 1 and isinstance(start, int) and start == 0:
        yield ir.Constant(i64, 0)
        return
    stop = ir.Constant(i64, count) if isinstance(count, int) else count
    first = ir.Constant(i64, start) if isinstance(start, int) else start
    before = b.block
    head = b.append_basic_block(f"{name}.head")
    body = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.end")
    b.branch(head)
    b.position_at_end(head)
    idx = b.phi(i64, name=name)
    idx.add_incoming(first, before)
    b.cbranch(b.icmp_signed("<", idx, stop), body, done)
    b.position_at_end(body)
    yield idx
    idx.add_incoming(b.add(idx, ir.Constant(i64, 1), flags=["nuw", "nsw"]), b.block)
    b.branch(head)
    b.position_at_end(done)
