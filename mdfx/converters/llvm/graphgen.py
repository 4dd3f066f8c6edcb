"""Graph -> LLVM IR: the ``learn`` kernel (the whole training loop) and the ``infer`` kernel.

Arguments: ONE pointer table (``i8**``: params, optimizer state, inputs, targets, the
trial order, losses, last outputs, learning rates, workspace; see :class:`Signature`)
and a few i64/double scalars, so a graph with any number of arrays passes ctypes'
argument limit. Every tensor of a minibatch lives in the workspace, which the runner
allocates: a batched tensor takes ``cap`` rows (``cap >= min(B, trials)``), the rest
one block. All gradient buffers sit in one region, zeroed in one loop per minibatch.

Each node is one small function (forward, and backward when a gradient flows through
it) that loops the op's per-sample rule (:mod:`.graph_rules`) over the rows of the
minibatch; nodes with the same op, attributes and shapes share one function, so a
deep chain of like layers compiles a handful of functions and one long list of calls
(compile time linear in depth). Small graphs have their node functions inlined
(``alwaysinline``): they run as one straight loop nest, as hand-written C would.

One ``learn`` call runs minibatches ``k0 <= k < k1`` of the flat schedule "epoch after
epoch, minibatch after minibatch"; minibatch ``k`` is the optimizer's step
``step0 + k + 1``. Per minibatch: gather the rows of the inputs in trial order, forward
every node the targets need, zero the gradients, the loss of every target (its
d(loss)/dy, the last-epoch outputs), backward in reverse order, then one optimizer step
per learnable param with its own learning rate (an array, read per call).

Counts are checked in the kernel before any use (``BAD_ARGUMENT``): a minibatch size
below 1, too few workspace rows, a ``k1`` past the last minibatch, with overflow-safe
arithmetic; a trial index outside ``[0, trials)`` returns ``BAD_INDEX``. Nothing traps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from llvmlite import ir

from mdfx import ops
from mdfx.converters.llvm.emit import F64, FLOAT_TYPES, I32, I64, Emitter
from mdfx.converters.llvm.graph_rules import GRAPH_RULES, Ctx, Fused, is_host, size
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

    def _function(self, key: tuple, args: list[ir.Type], noalias: list[bool]) -> tuple[ir.Function, bool]:
        fn = self.functions.get(key)
        if fn is not None:
            return fn, False
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), args), f"f{len(self.functions)}")
        fn.linkage = "internal"
        fn.attributes.add("alwaysinline" if self.inline else "noinline")
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
        b.call(fn, [*call_args, nrows])

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

        rows = nrows if out_batched else 1
        with e.loop(rows, "r") as r:
            xs = [row(p, r, s[2], s[1]) if s else None for p, s in zip(xs_base, shapes, strict=True)]
            c = Ctx(e, node.name, node.op, dict(node.attrs), xs, [s[1] if s else None for s in shapes],
                    row(y_base, r, out_batched, out_shape), out_shape, out_batched)
            if kind == "fwd":
                rule.forward(c)
            else:
                c.dy = row(dy_base, r, out_batched, out_shape)
                c.dxs = [row(p, r, s[2], s[1]) if s else None for p, s in zip(dx_base, shapes, strict=True)]
                c.fused = fused
                rule.backward(c)
        b.ret_void()

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
        b.call(fn, [w, grad, *state, lr, wd, step])


class _Main:
    """The kernel function itself: unpack the table, check the counts, place the workspace."""

    def __init__(self, bld: _Builder, name: str, scalars: list[ir.Type]) -> None:
        self.bld = bld
        fn = ir.Function(bld.module, ir.FunctionType(I32, [I8P.as_pointer(), *scalars]), name)
        self.fn = fn
        self.e = Emitter(bld.module, fn, bld.fty)
        self.table = fn.args[0]
        self.scalars = list(fn.args[1:])
        self.slot = 0

    def next_ptr(self, ty: ir.Type | None = None) -> ir.Value:
        b = self.e.b
        raw = b.load(b.gep(self.table, [ir.Constant(I64, self.slot)], inbounds=True))
        self.slot += 1
        return b.bitcast(raw, ty or self.bld.fptr)

    def fail_unless(self, ok: ir.Value, status: int) -> None:
        with self.e.b.if_then(self.e.b.not_(ok), likely=False):
            self.e.b.ret(ir.Constant(I32, status))

    def check_workspace(self, cap: ir.Value, ws_len: ir.Value, layout: _Layout) -> None:
        """cap >= 1 and cap * rows + fixed <= ws_len, without overflowing."""
        e, b = self.e, self.e.b
        self.fail_unless(b.icmp_signed(">=", cap, e.i64(1)), BAD_ARGUMENT)
        self.fail_unless(b.icmp_signed(">=", ws_len, e.i64(layout.fixed)), BAD_ARGUMENT)
        if layout.rows:
            room = b.sdiv(b.sub(ws_len, e.i64(layout.fixed)), e.i64(layout.rows))
            self.fail_unless(b.icmp_signed("<=", cap, room), BAD_ARGUMENT)

    def place(self, ws: ir.Value, cap: ir.Value, layout: _Layout) -> dict[str, ir.Value]:
        e, b = self.e, self.e.b
        out = {}
        for name, (rows, fixed) in layout.at.items():
            off = b.add(b.mul(cap, e.i64(rows)), e.i64(fixed))
            out[name] = e.at(ws, off)
        return out


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
    m = _Main(bld, "infer", [I64, I64, I64])
    e, b = m.e, m.e.b
    ntrials, cap, ws_len = m.scalars
    params = {k: m.next_ptr() for k in graph.params}
    inputs = {k: m.next_ptr() for k in graph.inputs}
    outs = [m.next_ptr() for _ in outputs]
    ws = m.next_ptr()
    m.fail_unless(b.icmp_signed(">=", ntrials, e.i64(0)), BAD_ARGUMENT)
    m.check_workspace(cap, ws_len, layout)
    bufs = {**params, **{k[2:]: v for k, v in m.place(ws, cap, layout).items()}}
    chunks = b.add(b.sdiv(ntrials, cap), b.zext(b.icmp_signed("!=", b.srem(ntrials, cap), e.i64(0)), I64))
    with e.loop(chunks, "chunk") as ch:
        start = b.mul(ch, cap)
        left = b.sub(ntrials, start)
        nrows = b.select(b.icmp_signed("<", left, cap), left, cap)
        for name, src in inputs.items():
            n = size(g.per_sample(name))
            _copy_rows(e, e.at(src, b.mul(start, e.i64(n))), bufs[name], b.mul(nrows, e.i64(n)))
        for node in g.nodes:
            bld.node_call(b, node, "fwd", bufs, {}, nrows)
        for name, dst in zip(outputs, outs, strict=True):
            n = size(g.per_sample(name))
            _copy_rows(e, bufs[name], e.at(dst, b.mul(start, e.i64(n))), b.mul(nrows, e.i64(n)))
    b.ret(ir.Constant(I32, OK))
    sig = Signature(tuple(graph.params), (), (), tuple(graph.inputs), tuple(outputs), layout.rows, layout.fixed)
    return bld.module, sig


def _copy_rows(e: Emitter, src: ir.Value, dst: ir.Value, count: ir.Value) -> None:
    with e.loop(count, "c") as i:
        e.store(e.load(src, i), dst, i)


def build_learn(graph: Graph, targets: list[str], dtype: str, loss: str, optimizer: str, single: bool,
                weight_decay: bool) -> tuple[ir.Module, Signature]:
    """``learn(table, ntrials, batch, k0, k1, epochs, step0, cap, ws_len, wd) -> status``.

    ``single``: built for minibatches of exactly one trial (the batch loops vanish).
    """
    if loss not in LOSS_RULES:
        raise UnsupportedError(f"the LLVM backend has no rule for loss {loss!r}; it has: {', '.join(LOSS_RULES)}")
    if optimizer not in OPTIMIZER_RULES:
        raise UnsupportedError(f"the LLVM backend has no rule for optimizer {optimizer!r}; "
                               f"it has: {', '.join(OPTIMIZER_RULES)}")
    g = _Graph(graph, targets)
    for t in targets:
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
    # every learnable param takes its step, a zero gradient where none flows (weight decay and
    # Adam's moments still move it), as the reference does
    trained = learnable

    bld = _Builder(g, dtype)
    # single-trial kernels step a param inside the backward of the one node that reads it,
    # where each of its elements gets exactly one gradient term (a dense layer's weight and
    # bias): no gradient buffer, no zeroing, one pass over the weights, as hand-written C
    fused_at: dict[str, Node] = {}
    if single:
        readers: dict[str, list[tuple[Node, int]]] = {}
        for n in g.nodes:
            for i, t in enumerate(n.inputs):
                if t:
                    readers.setdefault(t, []).append((n, i))
        for k in learnable:
            uses = readers.get(k, [])
            if len(uses) == 1 and uses[0][0] in backward_nodes and bld.fusable(*uses[0]):
                fused_at[k] = uses[0][0]
    layout = _Layout()
    _value_layout(g, layout)
    grads_at = (layout.rows, layout.fixed)
    for t in grad_tensors:
        n = size(g.per_sample(t))
        layout.add(f"g:{t}", n if g.batched[t] else 0, 0 if g.batched[t] else n)
    for k in trained:
        if k not in fused_at:
            layout.add(f"g:{k}", 0, size(graph.params[k].shape))
    grads_size = (layout.rows - grads_at[0], layout.fixed - grads_at[1])

    opt = OPTIMIZER_RULES[optimizer]
    m = _Main(bld, "learn", [I64, I64, I64, I64, I64, I64, I64, I64, F64])
    e, b = m.e, m.e.b
    ntrials, batch, k0, k1, epochs, step0, cap, ws_len, wd = m.scalars
    params = {k: m.next_ptr() for k in graph.params}
    state = {(k, s): m.next_ptr() for k in learnable for s in opt.state}
    inputs = {k: m.next_ptr() for k in graph.inputs}
    target_arrays = [m.next_ptr() for _ in targets]
    order = m.next_ptr(I64.as_pointer())
    losses = m.next_ptr()
    last = [m.next_ptr() for _ in targets]
    lrs = m.next_ptr(F64.as_pointer())
    ws = m.next_ptr()

    # --- counts, checked before any use (no trap, no wrap) ---
    m.fail_unless(b.icmp_signed(">=", ntrials, e.i64(1)), BAD_ARGUMENT)
    m.fail_unless(b.icmp_signed(">=", batch, e.i64(1)), BAD_ARGUMENT)
    if single:
        m.fail_unless(b.icmp_signed("==", batch, e.i64(1)), BAD_ARGUMENT)
    m.fail_unless(b.icmp_signed(">=", epochs, e.i64(0)), BAD_ARGUMENT)
    m.fail_unless(b.and_(b.icmp_signed(">=", k0, e.i64(0)), b.icmp_signed("<=", k0, k1)), BAD_ARGUMENT)
    m.fail_unless(b.icmp_signed(">=", step0, e.i64(0)), BAD_ARGUMENT)
    rows_needed = b.select(b.icmp_signed("<", batch, ntrials), batch, ntrials)
    m.fail_unless(b.icmp_signed(">=", cap, rows_needed), BAD_ARGUMENT)
    m.check_workspace(cap, ws_len, layout)
    per_epoch = b.add(b.sdiv(ntrials, batch), b.zext(b.icmp_signed("!=", b.srem(ntrials, batch), e.i64(0)), I64))
    # k1 <= epochs * per_epoch, written as (k1 - 1) / per_epoch < epochs so it cannot overflow
    last_ok = b.icmp_signed("<", b.sdiv(b.sub(k1, e.i64(1)), per_epoch), epochs)
    m.fail_unless(b.or_(b.icmp_signed("==", k1, e.i64(0)), last_ok), BAD_ARGUMENT)
    # step0 + k1 must not wrap either
    m.fail_unless(b.icmp_signed("<=", step0, b.sub(e.i64(2**63 - 1), k1)), BAD_ARGUMENT)

    placed = m.place(ws, cap, layout)
    bufs = {**params, **{k[2:]: v for k, v in placed.items() if k.startswith("v:")}}
    grads = {k[2:]: v for k, v in placed.items() if k.startswith("g:")}
    grad_region = e.at(ws, b.add(b.mul(cap, e.i64(grads_at[0])), e.i64(grads_at[1])))
    grad_count = b.add(b.mul(cap, e.i64(grads_size[0])), e.i64(grads_size[1]))
    loss_rule = LOSS_RULES[loss]
    lr_index = {k: i for i, k in enumerate(learnable)}

    with e.loop(k1, "k", start=k0) as kk:
        epoch = b.sdiv(kk, per_epoch)
        base = b.mul(b.sub(kk, b.mul(epoch, per_epoch)), batch)
        if single:
            nrows: ir.Value = e.i64(1)
        else:
            left = b.sub(ntrials, base)
            nrows = b.select(b.icmp_signed("<", left, batch), left, batch)
        first = b.add(b.mul(epoch, ntrials), base)
        # gather the minibatch's rows, in trial order; a bad index is an error, not a read
        with e.loop(nrows, "r") as r:
            trial = b.load(e.b.gep(order, [b.add(first, r)], inbounds=True))
            ok = b.and_(b.icmp_signed(">=", trial, e.i64(0)), b.icmp_signed("<", trial, ntrials))
            m.fail_unless(ok, BAD_INDEX)
            for name, src in inputs.items():
                n = size(g.per_sample(name))
                _copy_rows(e, e.row(src, trial, n), e.row(bufs[name], r, n), e.i64(n))
        for node in g.nodes:
            bld.node_call(b, node, "fwd", bufs, grads, nrows)
        with e.loop(grad_count, "z") as z:
            e.store(e.const(0.0), grad_region, z)
        total = None
        for t, tgt, out in zip(targets, target_arrays, last, strict=True):
            n = size(g.per_sample(t))
            divisor = loss_rule.divisor(e, nrows, n)
            acc = e.var(e.const(0.0), "loss")
            with e.loop(nrows, "r") as r:
                trial = b.load(e.b.gep(order, [b.add(first, r)], inbounds=True))
                y = e.row(bufs[t], r, n)
                e.add_to(acc, loss_rule.row(e, y, e.row(tgt, trial, n), e.row(grads[t], r, n), n, divisor))
                _copy_rows(e, y, e.row(out, trial, n), e.i64(n))
            value = b.load(acc)
            value = value if divisor is None else b.fdiv(value, divisor)
            total = value if total is None else b.fadd(total, value)  # batch_loss: summed over targets
        e.store(total if total is not None else e.const(0.0), losses, kk)
        step = b.add(b.add(kk, e.i64(1)), step0)

        def lr_of(k: str) -> ir.Value:
            return b.load(b.gep(lrs, [e.i64(lr_index[k])], inbounds=True))

        for node in reversed(backward_nodes):
            fused = {k: ([state[(k, s)] for s in opt.state], lr_of(k)) for k, n in fused_at.items() if n is node}
            bld.node_call(b, node, "bwd", bufs, grads, nrows, fused, (optimizer, weight_decay, wd, step))
        for k in trained:
            if k in fused_at:
                continue
            lr = lr_of(k)
            bld.update_call(b, optimizer, weight_decay, size(graph.params[k].shape), params[k], grads[k],
                            [state[(k, s)] for s in opt.state], lr, wd, step)
    b.ret(ir.Constant(I32, OK))
    sig = Signature(tuple(graph.params), tuple(learnable), tuple((k, s) for k in learnable for s in opt.state),
                    tuple(graph.inputs), tuple(targets), layout.rows, layout.fixed)
    return bld.module, sig
