"""Graph -> LLVM IR: the ``learn`` kernel (the whole training loop) and the ``infer`` kernel.

Arguments: ONE pointer table (``i8**``: params, optimizer state, inputs, targets, the
trial order, losses, last outputs, learning rates, workspace; see :class:`Signature`)
and a few i64/double scalars, so a graph with any number of arrays passes ctypes'
argument limit. Every tensor of a minibatch lives in the workspace, which the runner
allocates: a batched tensor takes ``cap`` rows (``cap >= min(B, trials)``), the rest
one block. All gradient buffers sit in one region, zeroed in one loop per minibatch.

Each node is one small function (forward, and backward when a gradient flows through
it) that loops the op's per-sample rule (:mod:`.graph_rules`) over the rows of the
minibatch; nodes with the same op, attributes and shapes share one function. On a small
graph (at most :data:`INLINE_NODES` nodes) every call is inlined into the kernel, which
runs as one straight loop nest, as hand-written C would. On a big graph the calls are
data: the kernel walks "programs" (forward, backward, updates), arrays of (function
address, buffer pointers) that the runner lays out, so only the distinct functions are
compiled and compile time no longer grows with depth (a 1000-layer chain: about 1 s).

One ``learn`` call runs minibatches ``k0 <= k < k1`` of the flat schedule "epoch after
epoch, minibatch after minibatch"; minibatch ``k`` is the optimizer's step
``step0 + k + 1``. Per minibatch: gather the rows of the inputs in trial order, forward
every node the targets need, zero the gradients, the loss of every target (its
d(loss)/dy, the last-epoch outputs), backward in reverse order, then one optimizer step
per learnable param with its own learning rate (an array, read per call). A param whose
step can run where its gradient is made takes it there instead (no gradient buffer):
minibatch 1, in the backward of the one node that reads it; larger minibatches with SGD
and no weight decay, a dense layer's weight inside its gradient's matrix product.

Counts are checked in the kernel before any use (``BAD_ARGUMENT``): a minibatch size
below 1, too few workspace rows, a ``k1`` past the last minibatch, with overflow-safe
arithmetic; a trial index outside ``[0, trials)`` returns ``BAD_INDEX``. Nothing traps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from llvmlite import ir

from mdfx import ops
from mdfx.converters.llvm.emit import F64, FLOAT_TYPES, I32, I64, Emitter
from mdfx.converters.llvm.graph_rules import GRAPH_RULES, Ctx, Fused, RefusedRule, is_host, size
from mdfx.converters.llvm.rules import LOSS_RULES, OPTIMIZER_RULES
from mdfx.errors import UnsupportedError
from mdfx.schema.graph import Graph, Node

#: Status codes a kernel returns.
OK, BAD_ARGUMENT, BAD_INDEX = 0, 2, 3

#: Graphs with at most this many compiled nodes get their node functions inlined (speed
#: on small nets); bigger ones keep one call per node (compile time linear in depth).
INLINE_NODES = 64

#: Workspace buffers start on multiples of this many elements (64 bytes in float64).
ALIGN = 8

I8P = ir.IntType(8).as_pointer()


@dataclass(frozen=True)
class Ref:
    """A buffer named symbolically in a call program; the runner turns it into an address.

    ``kind``: "p" param, "v" value / "g" gradient in the workspace, "s" optimizer state
    (``name`` and ``slot``), "lr" the param's learning rate (a pointer to its float64).
    """

    kind: str
    name: str
    slot: str = ""


#: Placeholders for the scalars a program's functions receive from the kernel.
NROWS, WD, STEP = "nrows", "wd", "step"


@dataclass(frozen=True)
class Signature:
    """A kernel's pointer table, in order, and its workspace (``cap * rows + fixed`` elements).

    ``learn``: params, state, inputs, targets, order (int64), losses, last (per target),
    lrs (float64, per learnable param), workspace. ``infer``: params, inputs, outputs,
    workspace. Every array is contiguous, of the working float type unless said.
    """

    params: tuple[str, ...]
    learnable: tuple[str, ...]
    state: tuple[tuple[str, str], ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]  #: targets (learn) or the tensors computed for the host (infer)
    ws_rows: int  #: workspace elements per row of capacity
    ws_fixed: int  #: workspace elements independent of the capacity
    #: workspace buffer ("v:<tensor>", "g:<tensor>") -> (elements per row of capacity, fixed elements)
    layout: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: big graphs: the call programs ("fwd", "bwd", "upd"), each a list of (function name, its buffers);
    #: the runner lays each out as int64 [length, (address, count, pointers...)...] in table slot "prog:<kind>"
    programs: dict[str, list[tuple[str, tuple[Ref, ...]]]] = field(default_factory=dict)


@dataclass
class _Layout:
    """Workspace offsets: buffer name -> (elements per row of capacity, fixed elements)."""

    at: dict[str, tuple[int, int]] = field(default_factory=dict)
    rows: int = 0
    fixed: int = 0

    def add(self, name: str, per_row: int, fixed: int) -> None:
        self.at[name] = (self.rows, self.fixed)
        self.rows += -(-per_row // ALIGN) * ALIGN
        self.fixed += -(-fixed // ALIGN) * ALIGN


class _Graph:
    """What a kernel computes: the float part of the graph that its outputs need."""

    def __init__(self, g: Graph, wanted: list[str]) -> None:
        self.g = g
        producer = {n.output: n for n in g.nodes}
        host: set[str] = set()
        for n in g.nodes:
            if n.op not in GRAPH_RULES:
                raise UnsupportedError(f"node {n.name!r}: the LLVM backend has no rule for op {n.op!r}")
            if isinstance(GRAPH_RULES[n.op], RefusedRule):
                raise UnsupportedError(f"node {n.name!r} ({n.op}): the LLVM backend {GRAPH_RULES[n.op].why}; "
                                       "run or train this graph in ExecutionMode.PyTorch or ExecutionMode.Python")
            if is_host(n.op) or any(t in host for t in n.inputs):
                host.add(n.output)
        for t in wanted:
            if t in host:
                raise UnsupportedError(f"tensor {t!r} of {g.name!r} is computed by an op that takes no gradient "
                                       f"({producer[t].op}); the LLVM kernel computes the float part only")
        need = set(wanted)
        for n in reversed(g.nodes):
            if n.output in need:
                need.update(t for t in n.inputs if t)
        self.nodes: list[Node] = [n for n in g.nodes if n.output in need]
        self.batched = {t: bool(s) and s[0] == ops.BATCH for t, s in g.shapes.items()}

    def per_sample(self, t: str) -> tuple[int, ...]:
        s = self.g.shapes[t]
        return tuple(s[1:]) if self.batched[t] else tuple(s)


class _Builder:
    """One module: node functions (shared by like nodes), update functions, the kernel."""

    def __init__(self, g: _Graph, dtype: str) -> None:
        self.g = g
        self.fty = FLOAT_TYPES[dtype]
        self.fptr = self.fty.as_pointer()
        self.module = ir.Module(name="mdfx.kernel")
        self.inline = len(g.nodes) <= INLINE_NODES
        self.functions: dict[tuple, ir.Function] = {}
        self.wrappers: dict[tuple, ir.Function] = {}
        #: big graphs: calls are recorded here as data (a program), not emitted as code
        self.program: list[tuple[str, tuple[Ref, ...]]] | None = None
        #: dense layers run as one matrix product per minibatch (kernels for minibatches > 1)
        self.whole_batch = True

    def _function(self, key: tuple, args: list[ir.Type], noalias: list[bool]) -> tuple[ir.Function, bool]:
        fn = self.functions.get(key)
        if fn is not None:
            return fn, False
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), args), f"f{len(self.functions)}")
        fn.linkage = "internal"
        # small graphs: inlined into the kernel; big ones: into the one wrapper a program calls
        fn.attributes.add("alwaysinline")
        fn.attributes.add("nounwind")
        for arg, na in zip(fn.args, noalias, strict=False):
            if na:
                arg.add_attribute("noalias")
        self.functions[key] = fn
        return fn, True

    def shapes(self, node: Node) -> tuple:
        g = self.g
        return tuple((t, g.per_sample(t), g.batched[t]) if t else None for t in node.inputs)

    def fusable(self, node: Node, i: int) -> bool:
        """Whether input ``i``'s optimizer step can run inside the node's backward (one sample)."""
        rule = GRAPH_RULES[node.op]
        if not hasattr(rule, "fusable"):
            return False
        g = self.g
        shapes = self.shapes(node)
        c = Ctx(None, node.name, node.op, dict(node.attrs), [], [s[1] if s else None for s in shapes], None,
                g.per_sample(node.output), g.batched[node.output])
        return bool(rule.fusable(c, i))

    def node_call(self, b: ir.IRBuilder, node: Node, kind: str, bufs: dict[str, ir.Value],
                  grads: dict[str, ir.Value], nrows: ir.Value, fused: dict[str, tuple] | None = None,
                  step: tuple | None = None) -> None:
        """Call the node's forward (``kind="fwd"``) or backward function on the minibatch.

        ``fused[param] = (state pointers, learning rate)``: params whose optimizer step runs
        inside this backward; ``step = (optimizer, weight_decay flag, wd, step number)``.
        """
        g = self.g
        fused = fused or {}
        ins = [t for t in node.inputs if t]
        out = node.output
        shapes = self.shapes(node)
        shape_key = tuple((s[1], s[2]) if s else None for s in shapes)
        out_key = (g.per_sample(out), g.batched[out])
        attrs_key = repr(sorted((k, v.tolist() if isinstance(v, np.ndarray) else v) for k, v in node.attrs.items()))
        fuse_flags = tuple(bool(t) and t in fused for t in node.inputs) if kind == "bwd" else ()
        dx_flags = tuple(bool(t) and t in grads and t not in fused for t in node.inputs) if kind == "bwd" else ()
        dup = len(set(ins)) != len(ins)
        opt_key = step[:2] if any(fuse_flags) else None
        key = (kind, node.op, attrs_key, shape_key, out_key, dx_flags, fuse_flags, opt_key, dup)
        n_dx = sum(dx_flags)
        n_state = len(OPTIMIZER_RULES[step[0]].state) if opt_key else 0
        args = [self.fptr] * (len(ins) + 1 + (1 + n_dx if kind == "bwd" else 0))
        args += [self.fptr] * (n_state * sum(fuse_flags))
        noalias = [not (dup and kind == "bwd")] * len(args)
        args += [F64] * sum(fuse_flags) + ([F64, I64] if opt_key else []) + [I64]
        fn, new = self._function(key, args, noalias)
        if new:
            self._emit_node(fn, node, kind, shapes, dx_flags, fuse_flags, opt_key, n_state)
        call_args = [bufs[t] for t in ins] + [bufs[out]]
        if kind == "bwd":
            call_args += [grads[out]] + [grads[t] for t, f in zip(node.inputs, dx_flags, strict=True) if f]
            fz = [t for t, f in zip(node.inputs, fuse_flags, strict=True) if f]
            call_args += [p for t in fz for p in fused[t][0]] + [fused[t][1] for t in fz]
            if opt_key:
                call_args += [step[2], step[3]]
        self.call(b, fn, [*call_args, nrows])

    def call(self, b: ir.IRBuilder | None, fn: ir.Function, args: list) -> None:
        """Call ``fn``: directly (small graphs), or as one entry of the current program (big ones)."""
        if self.program is None:
            b.call(fn, args)
            return
        key = (fn.name, tuple(a if isinstance(a, str) else type(a).__name__ for a in args))
        wrapper = self.wrappers.get(key)
        if wrapper is None:
            wrapper = self._wrapper(fn, args)
            self.wrappers[key] = wrapper
        self.program.append((wrapper.name, tuple(a for a in args if isinstance(a, Ref))))

    def _wrapper(self, fn: ir.Function, args: list) -> ir.Function:
        """``w(i8** ptrs, i64 nrows, double wd, i64 step)``: unpack a program entry's pointers, call ``fn``."""
        fnty = ir.FunctionType(ir.VoidType(), [I8P.as_pointer(), I64, F64, I64])
        w = ir.Function(self.module, fnty, f"w{len(self.wrappers)}")
        w.attributes.add("nounwind")
        e = Emitter(self.module, w, self.fty)
        b = e.b
        table, scalars = w.args[0], {NROWS: w.args[1], WD: w.args[2], STEP: w.args[3]}
        values, i = [], 0
        for param, a in zip(fn.args, args, strict=True):
            if isinstance(a, str):
                values.append(scalars[a])
                continue
            raw = b.load(b.gep(table, [e.i64(i)], inbounds=True))
            i += 1
            if isinstance(param.type, ir.PointerType):
                values.append(b.bitcast(raw, param.type))
            else:  # a learning rate, passed by address
                values.append(b.load(b.bitcast(raw, F64.as_pointer())))
        b.call(fn, values)
        b.ret_void()
        return w

    def _emit_node(self, fn: ir.Function, node: Node, kind: str, shapes: tuple, dx_flags: tuple,
                   fuse_flags: tuple = (), opt_key: tuple | None = None, n_state: int = 0) -> None:
        g = self.g
        e = Emitter(self.module, fn, self.fty)
        b = e.b
        args = list(fn.args)
        nrows = args.pop()
        xs_base: list[ir.Value | None] = [args.pop(0) if s else None for s in shapes]
        y_base = args.pop(0)
        dy_base = args.pop(0) if kind == "bwd" else None
        dx_base = [args.pop(0) if f else None for f in dx_flags]
        fused: list[Fused | None] = [None] * len(shapes)
        if opt_key:
            states = [[args.pop(0) for _ in range(n_state)] if f else None for f in fuse_flags]
            lrs = [args.pop(0) if f else None for f in fuse_flags]
            wd, step = args.pop(0), args.pop(0)
            optimizer, with_wd = opt_key
            rule = OPTIMIZER_RULES[optimizer]
            hyper = dict(ops.optimizer_op(optimizer).hyper)
            for i, f in enumerate(fuse_flags):
                if f:
                    scalars = rule.prepare(e, step, lrs[i], wd if with_wd else None, hyper)
                    fused[i] = Fused(rule, states[i], scalars, hyper)
        out_shape, out_batched = g.per_sample(node.output), g.batched[node.output]
        rule = GRAPH_RULES[node.op]

        def row(ptr: ir.Value | None, r: ir.Value, batched: bool, shape: tuple[int, ...]) -> ir.Value | None:
            if ptr is None or not batched:
                return ptr
            return e.row(ptr, r, size(shape))

        if self.whole_batch and _dense(node, shapes, out_batched):
            # a dense layer over a minibatch: one matrix product (mdfx.converters.llvm.gemm:
            # tiled loops, or BLAS when big enough), not one matrix-vector product per row
            self._dense_products(e, node, kind, xs_base, y_base, dy_base, dx_base, nrows, fused)
            if node.op == "Gemm" and len(shapes) > 2 and shapes[2] is not None:
                with e.loop(nrows, "r") as r:  # + beta * C, row by row (the rule's broadcasting)
                    c = Ctx(e, node.name, node.op, dict(node.attrs), [None, None, row(xs_base[2], r, shapes[2][2],
                            shapes[2][1])], [None, None, shapes[2][1]], row(y_base, r, True, out_shape), out_shape,
                            True)
                    if kind == "fwd":
                        _add_bias(c)
                    elif dx_base[2] is not None:
                        c.dy = row(dy_base, r, True, out_shape)
                        c.dxs = [None, None, row(dx_base[2], r, shapes[2][2], shapes[2][1])]
                        _bias_grad(c)
            b.ret_void()
            return
        rows = nrows if out_batched else 1
        with e.loop(rows, "r") as r:
            xs = [row(p, r, s[2], s[1]) if s else None for p, s in zip(xs_base, shapes, strict=True)]
            c = Ctx(e, node.name, node.op, dict(node.attrs), xs, [s[1] if s else None for s in shapes],
                    row(y_base, r, out_batched, out_shape), out_shape, out_batched,
                    xbatched=[bool(s and s[2]) for s in shapes])
            if kind == "fwd":
                rule.forward(c)
            else:
                c.dy = row(dy_base, r, out_batched, out_shape)
                c.dxs = [row(p, r, s[2], s[1]) if s else None for p, s in zip(dx_base, shapes, strict=True)]
                c.fused = fused
                rule.backward(c)
        b.ret_void()

    def _dense_products(self, e: Emitter, node: Node, kind: str, xs: list, y: ir.Value, dy: ir.Value | None,
                        dxs: list, nrows: ir.Value, fused: list | None = None) -> None:
        """Y = alpha * X @ op(W) over the minibatch; backward dX += alpha * dY @ op(W)^T, dW += ...

        ``fused[1]``: W's SGD step (no weight decay) runs inside its gradient's product,
        W = -lr * alpha * X^T @ dY + W, after dX has read the old W: no gradient buffer to
        zero, no separate pass of the update over W.
        """
        from mdfx.converters.llvm.gemm import emit_gemm

        b, dtype = e.b, "float64" if self.fty == F64 else "float32"
        gemm = node.op == "Gemm"
        alpha = float(node.attrs["alpha"]) if gemm else 1.0
        tb = bool(node.attrs["transB"]) if gemm else False
        wshape = self.g.g.shapes[node.inputs[1]]
        k, n = (wshape[1], wshape[0]) if tb else wshape
        ldw = wshape[1]
        x, w = xs[0], xs[1]
        if kind == "fwd":
            emit_gemm(b, dtype, False, tb, nrows, n, k, alpha, x, k, w, ldw, 0.0, y, n)
            return
        if dxs[0] is not None:  # dX (rows, k) += alpha * dY @ op(W)^T
            emit_gemm(b, dtype, False, not tb, nrows, k, n, alpha, dy, n, w, ldw, 1.0, dxs[0], k)
        step = fused[1] if fused else None
        dw, w_alpha = dxs[1], alpha
        if step is not None:
            dw, w_alpha = w, b.fmul(e.const(-alpha), step.scalars.lr)
        if dw is not None:
            if not tb:  # dW (k, n) += alpha * X^T @ dY
                emit_gemm(b, dtype, True, False, k, n, nrows, w_alpha, x, k, dy, n, 1.0, dw, n)
            else:  # dW (n, k) += alpha * dY^T @ X
                emit_gemm(b, dtype, True, False, n, k, nrows, w_alpha, dy, n, x, k, 1.0, dw, k)

    def update_call(self, b: ir.IRBuilder, optimizer: str, weight_decay: bool, n: int, w: ir.Value,
                    grad: ir.Value, state: list[ir.Value], lr: ir.Value, wd: ir.Value, step: ir.Value) -> None:
        """One optimizer step of an ``n``-element param; one function per size, shared."""
        opt = OPTIMIZER_RULES[optimizer]
        hyper = dict(ops.optimizer_op(optimizer).hyper)
        key = ("update", optimizer, weight_decay, n)
        args = [self.fptr] * (2 + len(opt.state)) + [F64, F64, I64]
        fn, new = self._function(key, args, [True] * (2 + len(opt.state)))
        if new:
            e = Emitter(self.module, fn, self.fty)
            fw, fg, *fs, flr, fwd, fstep = fn.args
            s = opt.prepare(e, fstep, flr, fwd if weight_decay else None, hyper)
            with e.loop(n, "i") as i:
                wp = e.at(fw, i)
                new_w = opt.update(e, e.b.load(wp), e.load(fg, i), tuple(e.at(p, i) for p in fs), s, hyper)
                e.b.store(new_w, wp)
            e.b.ret_void()
        self.call(b, fn, [w, grad, *state, lr, wd, step])


class _Scope:
    """The pointers one function uses, each loaded (from the table) or placed (in the
    workspace) once, in the entry block, on first use."""

    def __init__(self, e: Emitter, table: ir.Value, cap: ir.Value, slots: dict[str, int], layout: _Layout,
                 params: set[str], fptr: ir.Type) -> None:
        self.e, self.table, self.cap, self.slots, self.layout = e, table, cap, slots, layout
        self.params, self.fptr = params, fptr
        self.cache: dict[str, ir.Value] = {}

    def ptr(self, key: str, ty: ir.Type | None = None) -> ir.Value:
        if key not in self.cache:
            b = self.e.entry
            raw = b.load(b.gep(self.table, [ir.Constant(I64, self.slots[key])], inbounds=True))
            self.cache[key] = b.bitcast(raw, ty or self.fptr)
        return self.cache[key]

    def ws(self, key: str) -> ir.Value:
        if key not in self.cache:
            b = self.e.entry
            rows, fixed = self.layout.at[key]
            off = b.add(b.mul(self.cap, ir.Constant(I64, rows)), ir.Constant(I64, fixed))
            self.cache[key] = b.gep(self.ptr("ws"), [off], inbounds=True)
        return self.cache[key]

    def value(self, t: str) -> ir.Value:
        return self.ptr(f"p:{t}") if t in self.params else self.ws(f"v:{t}")

    def values(self) -> _Lookup:
        return _Lookup(self.value, lambda t: True)

    def grads(self) -> _Lookup:
        return _Lookup(lambda t: self.ws(f"g:{t}"), lambda t: f"g:{t}" in self.layout.at)


class _RefScope:
    """:class:`_Scope`'s questions answered with :class:`Ref` (big graphs: calls become data)."""

    def __init__(self, layout: _Layout, params: set[str]) -> None:
        self.layout, self.params = layout, params
        self.e = None

    def ptr(self, key: str, ty: ir.Type | None = None) -> Ref:
        kind, name, *slot = key.split(":", 2)
        return Ref(kind, name, slot[0] if slot else "")

    def ws(self, key: str) -> Ref:
        kind, name = key.split(":", 1)
        return Ref(kind, name)

    def value(self, t: str) -> Ref:
        return Ref("p", t) if t in self.params else Ref("v", t)

    def values(self) -> _Lookup:
        return _Lookup(self.value, lambda t: True)

    def grads(self) -> _Lookup:
        return _Lookup(lambda t: Ref("g", t), lambda t: f"g:{t}" in self.layout.at)


class _Lookup(Mapping):
    """``bufs[tensor]`` / ``tensor in grads`` for :meth:`_Builder.node_call`."""

    def __init__(self, get: Callable[[str], ir.Value], has: Callable[[str], bool]) -> None:
        self.get_, self.has = get, has

    def __getitem__(self, key: str) -> ir.Value:
        return self.get_(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.has(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _Main:
    """The kernel function itself: check the counts, then a loop that calls the segments."""

    def __init__(self, bld: _Builder, name: str, scalars: list[ir.Type], slots: list[str], layout: _Layout,
                 cap_arg: int) -> None:
        self.bld = bld
        fn = ir.Function(bld.module, ir.FunctionType(I32, [I8P.as_pointer(), *scalars]), name)
        self.fn = fn
        self.e = Emitter(bld.module, fn, bld.fty)
        self.table = fn.args[0]
        self.scalars = list(fn.args[1:])
        self.slots = {k: i for i, k in enumerate(slots)}
        self.layout = layout
        self.params = set(bld.g.g.params)
        self.scope = _Scope(self.e, self.table, self.scalars[cap_arg], self.slots, layout, self.params, bld.fptr)
        self.segments: dict[str, int] = {}
        self.programs: dict[str, list[tuple[str, tuple[Ref, ...]]]] = {}

    def walk(self, kind: str, args: list[ir.Value]) -> None:
        """Call every entry of program ``kind`` (table slot ``prog:<kind>``): int64 ``[length, (address,
        count, pointer * count)...]``."""
        e, b = self.e, self.e.b
        scalars = {"fwd": args, "bwd": args, "upd": [e.i64(1), *args]}[kind]
        nrows, wd, step = (scalars + [ir.Constant(F64, 0.0), e.i64(0)])[:3]
        prog = self.scope.ptr(f"prog:{kind}", I64.as_pointer())
        length = b.load(prog)
        pos = e.var(e.i64(1), "pos")
        head = b.append_basic_block(f"{kind}.head")
        body = b.append_basic_block(f"{kind}.body")
        done = b.append_basic_block(f"{kind}.end")
        b.branch(head)
        b.position_at_end(head)
        at = b.load(pos)
        b.cbranch(b.icmp_signed("<", at, length), body, done)
        b.position_at_end(body)
        fnty = ir.FunctionType(ir.VoidType(), [I8P.as_pointer(), I64, F64, I64])
        fn = b.inttoptr(b.load(e.at(prog, at)), fnty.as_pointer())
        count = b.load(e.at(prog, b.add(at, e.i64(1))))
        ptrs = b.bitcast(e.at(prog, b.add(at, e.i64(2))), I8P.as_pointer())
        b.call(fn, [ptrs, nrows, wd, step])
        b.store(b.add(at, b.add(count, e.i64(2))), pos)
        b.branch(head)
        b.position_at_end(done)

    def fail_unless(self, ok: ir.Value, status: int) -> None:
        with self.e.b.if_then(self.e.b.not_(ok), likely=False):
            self.e.b.ret(ir.Constant(I32, status))

    def check_workspace(self, cap: ir.Value, ws_len: ir.Value) -> None:
        """cap >= 1 and cap * rows + fixed <= ws_len, without overflowing."""
        e, b, layout = self.e, self.e.b, self.layout
        self.fail_unless(b.icmp_signed(">=", cap, e.i64(1)), BAD_ARGUMENT)
        self.fail_unless(b.icmp_signed(">=", ws_len, e.i64(layout.fixed)), BAD_ARGUMENT)
        if layout.rows:
            room = b.sdiv(b.sub(ws_len, e.i64(layout.fixed)), e.i64(layout.rows))
            self.fail_unless(b.icmp_signed("<=", cap, room), BAD_ARGUMENT)

    def segments_call(self, kind: str, items: list, emit: Callable[[_Scope, Any, list[ir.Value]], None],
                      args: list[ir.Value]) -> None:
        """Emit ``items`` into one segment function, inlined (small graphs), or record them as a program.

        ``args``: extra scalars every segment receives (nrows, wd, step...); ``emit(scope, item, args)``.
        """
        bld = self.bld
        if not bld.inline:  # the calls become a program the kernel walks
            bld.program = self.programs.setdefault(kind, [])
            scope = _RefScope(self.layout, self.params)
            names = [NROWS, WD, STEP][:len(args)] if kind != "upd" else [WD, STEP]
            for item in items:
                emit(scope, item, names)
            bld.program = None
            self.walk(kind, args)
            return
        per = len(items)
        for start in range(0, len(items), max(per, 1)):
            chunk = items[start:start + per]
            fnty = ir.FunctionType(ir.VoidType(), [I8P.as_pointer(), I64, *[a.type for a in args]])
            n = self.segments[kind] = self.segments.get(kind, 0) + 1
            fn = ir.Function(bld.module, fnty, f"{kind}{n}")
            fn.linkage = "internal"
            fn.attributes.add("alwaysinline" if bld.inline else "noinline")
            fn.attributes.add("nounwind")
            e = Emitter(bld.module, fn, bld.fty)
            scope = _Scope(e, fn.args[0], fn.args[1], self.slots, self.layout, self.params, bld.fptr)
            for item in chunk:
                emit(scope, item, list(fn.args[2:]))
            e.b.ret_void()
            self.e.b.call(fn, [self.table, self.scope.cap, *args])


def _dense(node: Node, shapes: tuple, out_batched: bool) -> bool:
    """A dense layer: a batched vector per sample times a 2-D tensor without a batch."""
    if node.op not in ("MatMul", "Gemm") or not out_batched or shapes[0] is None or shapes[1] is None:
        return False
    if node.op == "Gemm" and node.attrs["transA"]:
        return False
    (_, sa, ba), (_, sb, bb) = shapes[0], shapes[1]
    return ba and len(sa) == 1 and not bb and len(sb) == 2


def _add_bias(c: Ctx) -> None:
    """y += beta * C (Gemm's bias term), C broadcast to one row."""
    from mdfx.converters.llvm.graph_rules import bstrides, nd_loop, strides

    e, b = c.e, c.e.b
    with nd_loop(e, c.yshape, strides(c.yshape), bstrides(c.xshapes[2], c.yshape)) as (o, ic):
        e.store(b.fadd(e.load(c.y, o), b.fmul(e.const(float(c.attrs["beta"])), e.load(c.xs[2], ic))), c.y, o)


def _bias_grad(c: Ctx) -> None:
    from mdfx.converters.llvm.graph_rules import bstrides, nd_loop, strides

    e, b = c.e, c.e.b
    with nd_loop(e, c.yshape, strides(c.yshape), bstrides(c.xshapes[2], c.yshape)) as (o, ic):
        e.store(b.fadd(e.load(c.dxs[2], ic), b.fmul(e.const(float(c.attrs["beta"])), e.load(c.dy, o))), c.dxs[2], ic)


def _value_layout(g: _Graph, layout: _Layout) -> None:
    for t in [*g.g.inputs, *(n.output for n in g.nodes)]:
        n = size(g.per_sample(t))
        layout.add(f"v:{t}", n if g.batched[t] else 0, 0 if g.batched[t] else n)


def build_infer(graph: Graph, outputs: list[str], dtype: str) -> tuple[ir.Module, Signature]:
    """``infer(table, ntrials, cap, ws_len) -> status``: forward ``cap`` trials at a time."""
    g = _Graph(graph, outputs)
    bld = _Builder(g, dtype)
    layout = _Layout()
    _value_layout(g, layout)
    slots = [f"p:{k}" for k in graph.params] + [f"in:{k}" for k in graph.inputs] + \
        [f"out:{i}" for i in range(len(outputs))] + ["ws", "prog:fwd"]
    m = _Main(bld, "infer", [I64, I64, I64], slots, layout, cap_arg=1)
    e, b, sc = m.e, m.e.b, m.scope
    ntrials, cap, ws_len = m.scalars
    m.fail_unless(b.icmp_signed(">=", ntrials, e.i64(0)), BAD_ARGUMENT)
    m.check_workspace(cap, ws_len)
    chunks = b.add(b.sdiv(ntrials, cap), b.zext(b.icmp_signed("!=", b.srem(ntrials, cap), e.i64(0)), I64))
    with e.loop(chunks, "chunk") as ch:
        start = b.mul(ch, cap)
        left = b.sub(ntrials, start)
        nrows = b.select(b.icmp_signed("<", left, cap), left, cap)
        for name in graph.inputs:
            n = size(g.per_sample(name))
            _copy_rows(e, e.at(sc.ptr(f"in:{name}"), b.mul(start, e.i64(n))), sc.value(name), b.mul(nrows, e.i64(n)))
        m.segments_call("fwd", g.nodes, lambda s, node, a: bld.node_call(s.e and s.e.b, node, "fwd", s.values(), {}, a[0]),
                        [nrows])
        for i, name in enumerate(outputs):
            n = size(g.per_sample(name))
            _copy_rows(e, sc.value(name), e.at(sc.ptr(f"out:{i}"), b.mul(start, e.i64(n))), b.mul(nrows, e.i64(n)))
    b.ret(ir.Constant(I32, OK))
    sig = Signature(tuple(graph.params), (), (), tuple(graph.inputs), tuple(outputs), layout.rows, layout.fixed,
                    dict(layout.at), m.programs)
    return bld.module, sig


def _copy_rows(e: Emitter, src: ir.Value, dst: ir.Value, count: ir.Value) -> None:
    with e.loop(count, "c") as i:
        e.store(e.load(src, i), dst, i)


def build_learn(graph: Graph, targets: list[str], dtype: str, loss: str, optimizer: str, single: bool,
                weight_decay: bool, sources: tuple[str | None, ...] = (), recorded: tuple[str, ...] = ()
                ) -> tuple[ir.Module, Signature]:
    """``learn(table, ntrials, batch, k0, k1, epochs, step0, cap, ws_len, wd, every) -> status``.

    ``single``: built for minibatches of exactly one trial (the batch loops vanish).
    ``sources[i]``: the tensor whose value in the minibatch is target ``i``'s target (an
    internal target, read from the workspace, no gradient into it), or None: an array
    ``t:i`` in the table. ``recorded``: tensors whose rows also come back in ``last``.
    ``every`` (0 or 1): 1 writes each epoch's outputs to its own block of ``last`` (row
    ``epoch * ntrials + trial``: ``last`` then holds ``epochs * ntrials`` rows), so one
    call keeps every epoch's outputs; 0 overwrites one block of ``ntrials`` rows.
    """
    sources = sources or (None,) * len(targets)
    if loss not in LOSS_RULES:
        raise UnsupportedError(f"the LLVM backend has no rule for loss {loss!r}; it has: {', '.join(LOSS_RULES)}")
    if optimizer not in OPTIMIZER_RULES:
        raise UnsupportedError(f"the LLVM backend has no rule for optimizer {optimizer!r}; "
                               f"it has: {', '.join(OPTIMIZER_RULES)}")
    reported = [*targets, *(r for r in recorded if r not in targets)]
    g = _Graph(graph, [*reported, *(t for t in sources if t)])
    for t in [*reported, *(t for t in sources if t)]:
        if not g.batched[t]:
            raise UnsupportedError(f"target {t!r} of {graph.name!r} has no batch axis")
    learnable = [k for k, p in graph.params.items() if p.learnable]
    needed = set(learnable)
    for n in g.nodes:
        if any(t in needed for t in n.inputs):
            needed.add(n.output)
    flows = set(targets)
    for n in reversed(g.nodes):
        if n.output in flows:
            flows.update(t for t in n.inputs if t)
    grad_tensors = [t for t in [*graph.inputs, *(n.output for n in g.nodes)]
                    if (t in needed and t in flows) or t in targets]
    backward_nodes = [n for n in g.nodes if n.output in needed and n.output in flows]

    bld = _Builder(g, dtype)
    bld.whole_batch = not single
    # single-trial kernels step a param inside the backward of the one node that reads it,
    # where each of its elements gets exactly one gradient term (a dense layer's weight and
    # bias): no gradient buffer, no zeroing, one pass over the weights, as hand-written C
    fused_at: dict[str, Node] = {}
    backward_ids = {id(n) for n in backward_nodes}  # by identity: Node equality compares lists
    readers: dict[str, list[tuple[Node, int]]] = {}
    for n in g.nodes:
        for i, t in enumerate(n.inputs):
            if t:
                readers.setdefault(t, []).append((n, i))
    if single:
        for k in learnable:
            uses = readers.get(k, [])
            if len(uses) == 1 and id(uses[0][0]) in backward_ids and bld.fusable(*uses[0]):
                fused_at[k] = uses[0][0]
    elif optimizer == "sgd" and not weight_decay:
        # minibatch kernels: a dense layer's weight read by that layer only takes its SGD
        # step inside its gradient's matrix product (_Builder._dense_products)
        for k in learnable:
            uses = readers.get(k, [])
            if len(uses) == 1 and uses[0][1] == 1 and id(uses[0][0]) in backward_ids:
                node = uses[0][0]
                if _dense(node, bld.shapes(node), g.batched[node.output]):
                    fused_at[k] = node
    fused_by_node: dict[int, list[str]] = {}
    for k, n in fused_at.items():
        fused_by_node.setdefault(id(n), []).append(k)
    # every other learnable param takes its step after the backward, a zero gradient where
    # none flows (weight decay and Adam's moments still move it), as the reference does
    stepped = [k for k in learnable if k not in fused_at]
    layout = _Layout()
    _value_layout(g, layout)
    grads_at = (layout.rows, layout.fixed)
    for t in grad_tensors:
        n = size(g.per_sample(t))
        layout.add(f"g:{t}", n if g.batched[t] else 0, 0 if g.batched[t] else n)
    for k in stepped:
        layout.add(f"g:{k}", 0, size(graph.params[k].shape))
    grads_size = (layout.rows - grads_at[0], layout.fixed - grads_at[1])

    opt = OPTIMIZER_RULES[optimizer]
    slots = [f"p:{k}" for k in graph.params] + [f"s:{k}:{s}" for k in learnable for s in opt.state] + \
        [f"in:{k}" for k in graph.inputs] + [f"t:{i}" for i in range(len(targets)) if sources[i] is None] + \
        ["order", "losses"] + [f"last:{i}" for i in range(len(reported))] + ["lrs", "ws", "prog:fwd", "prog:bwd",
                                                                             "prog:upd"]
    m = _Main(bld, "learn", [I64, I64, I64, I64, I64, I64, I64, I64, F64, I64], slots, layout, cap_arg=6)
    e, b, sc = m.e, m.e.b, m.scope
    ntrials, batch, k0, k1, epochs, step0, cap, ws_len, wd, every = m.scalars
    order = sc.ptr("order", I64.as_pointer())

    # --- counts, checked before any use (no trap, no wrap) ---
    m.fail_unless(b.icmp_signed(">=", ntrials, e.i64(1)), BAD_ARGUMENT)
    m.fail_unless(b.icmp_signed(">=", batch, e.i64(1)), BAD_ARGUMENT)
    if single:
        m.fail_unless(b.icmp_signed("==", batch, e.i64(1)), BAD_ARGUMENT)
    m.fail_unless(b.icmp_signed(">=", epochs, e.i64(0)), BAD_ARGUMENT)
    m.fail_unless(b.and_(b.icmp_signed(">=", k0, e.i64(0)), b.icmp_signed("<=", k0, k1)), BAD_ARGUMENT)
    m.fail_unless(b.icmp_signed(">=", step0, e.i64(0)), BAD_ARGUMENT)
    m.fail_unless(b.icmp_unsigned("<=", every, e.i64(1)), BAD_ARGUMENT)
    rows_needed = b.select(b.icmp_signed("<", batch, ntrials), batch, ntrials)
    m.fail_unless(b.icmp_signed(">=", cap, rows_needed), BAD_ARGUMENT)
    m.check_workspace(cap, ws_len)
    per_epoch = b.add(b.sdiv(ntrials, batch), b.zext(b.icmp_signed("!=", b.srem(ntrials, batch), e.i64(0)), I64))
    # k1 <= epochs * per_epoch, written as (k1 - 1) / per_epoch < epochs so it cannot overflow
    last_ok = b.icmp_signed("<", b.sdiv(b.sub(k1, e.i64(1)), per_epoch), epochs)
    m.fail_unless(b.or_(b.icmp_signed("==", k1, e.i64(0)), last_ok), BAD_ARGUMENT)
    # step0 + k1 must not wrap either
    m.fail_unless(b.icmp_signed("<=", step0, b.sub(e.i64(2**63 - 1), k1)), BAD_ARGUMENT)

    grad_region = e.at(sc.ptr("ws"), b.add(b.mul(cap, e.i64(grads_at[0])), e.i64(grads_at[1])))
    grad_count = b.add(b.mul(cap, e.i64(grads_size[0])), e.i64(grads_size[1]))
    loss_rule = LOSS_RULES[loss]
    lr_index = {k: i for i, k in enumerate(learnable)}

    def lr_of(s: _Scope | _RefScope, k: str) -> ir.Value | Ref:
        if isinstance(s, _RefScope):
            return Ref("lr", k)
        return s.e.b.load(s.e.b.gep(s.ptr("lrs", F64.as_pointer()), [s.e.i64(lr_index[k])], inbounds=True))

    def backward(s: _Scope, node: Node, a: list[ir.Value]) -> None:
        nrows_, wd_, step_ = a
        fused = {k: ([s.ptr(f"s:{k}:{st}") for st in opt.state], lr_of(s, k)) for k in fused_by_node.get(id(node), ())}
        bld.node_call(s.e and s.e.b, node, "bwd", s.values(), s.grads(), nrows_, fused,
                      (optimizer, weight_decay, wd_, step_))

    def update(s: _Scope, k: str, a: list[ir.Value]) -> None:
        wd_, step_ = a
        bld.update_call(s.e and s.e.b, optimizer, weight_decay, size(graph.params[k].shape), s.value(k), s.ws(f"g:{k}"),
                        [s.ptr(f"s:{k}:{st}") for st in opt.state], lr_of(s, k), wd_, step_)

    with e.loop(k1, "k", start=k0) as kk:
        epoch = b.sdiv(kk, per_epoch)
        base = b.mul(b.sub(kk, b.mul(epoch, per_epoch)), batch)
        if single:
            nrows: ir.Value = e.i64(1)
        else:
            left = b.sub(ntrials, base)
            nrows = b.select(b.icmp_signed("<", left, batch), left, batch)
        first = b.add(b.mul(epoch, ntrials), base)
        # the block of ``last`` this epoch writes: its own (every == 1) or the one block
        last_base = b.mul(b.mul(epoch, every), ntrials)
        # gather the minibatch's rows, in trial order; a bad index is an error, not a read
        with e.loop(nrows, "r") as r:
            trial = b.load(e.b.gep(order, [b.add(first, r)], inbounds=True))
            ok = b.and_(b.icmp_signed(">=", trial, e.i64(0)), b.icmp_signed("<", trial, ntrials))
            m.fail_unless(ok, BAD_INDEX)
            for name in graph.inputs:
                n = size(g.per_sample(name))
                _copy_rows(e, e.row(sc.ptr(f"in:{name}"), trial, n), e.row(sc.value(name), r, n), e.i64(n))
        m.segments_call("fwd", g.nodes, lambda s, node, a: bld.node_call(s.e and s.e.b, node, "fwd", s.values(), {}, a[0]),
                        [nrows])
        with e.loop(grad_count, "z") as z:
            e.store(e.const(0.0), grad_region, z)
        total = None
        for i, t in enumerate(targets):
            n = size(g.per_sample(t))
            divisor = loss_rule.divisor(e, nrows, n)
            acc = e.var(e.const(0.0), "loss")
            with e.loop(nrows, "r") as r:
                trial = b.load(e.b.gep(order, [b.add(first, r)], inbounds=True))
                y = e.row(sc.value(t), r, n)
                source = sources[i]
                target = e.row(sc.ptr(f"t:{i}"), trial, n) if source is None else e.row(sc.value(source), r, n)
                term = loss_rule.row(e, y, target, e.row(sc.ws(f"g:{t}"), r, n), n, divisor)
                e.add_to(acc, term)
                _copy_rows(e, y, e.row(sc.ptr(f"last:{i}"), b.add(last_base, trial), n), e.i64(n))
            value = b.load(acc)
            value = value if divisor is None else b.fdiv(value, divisor)
            total = value if total is None else b.fadd(total, value)  # batch_loss: summed over targets
        for j, t in enumerate(reported[len(targets):], start=len(targets)):
            n = size(g.per_sample(t))
            with e.loop(nrows, "r") as r:
                trial = b.load(e.b.gep(order, [b.add(first, r)], inbounds=True))
                _copy_rows(e, e.row(sc.value(t), r, n), e.row(sc.ptr(f"last:{j}"), b.add(last_base, trial), n),
                           e.i64(n))
        e.store(total if total is not None else e.const(0.0), sc.ptr("losses"), kk)
        step = b.add(b.add(kk, e.i64(1)), step0)
        m.segments_call("bwd", list(reversed(backward_nodes)), backward, [nrows, wd, step])
        m.segments_call("upd", stepped, update, [wd, step])
    b.ret(ir.Constant(I32, OK))
    sig = Signature(tuple(graph.params), tuple(learnable), tuple((k, s) for k in learnable for s in opt.state),
                    tuple(graph.inputs), tuple(targets), layout.rows, layout.fixed, dict(layout.at), m.programs)
    return bld.module, sig
