"""PsyNeuLink names added for its suite (issue 11, branch misc), checked against PsyNeuLink 0.21.

The numbers were measured with PsyNeuLink 0.21 (/tmp/pnlvenv); the scripts and
results are in tests/pnl_reference/facts.md under the section each test names.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import assert_close

import mdfx as pnl

torch = pytest.importorskip("torch")


# --- copy_torch_param_to_projection_matrix / copy_projection_matrix_to_torch_param ---------


def _three_to_five() -> tuple[pnl.AutodiffComposition, pnl.MappingProjection]:
    comp = pnl.AutodiffComposition([pnl.ProcessingMechanism(input_shapes=3), pnl.MappingProjection(name="P"),
                                    pnl.ProcessingMechanism(input_shapes=5)])
    return comp, comp.projections["P"]


WEIGHT = np.arange(15.0).reshape(5, 3) / 10  # a torch Linear(3, 5) weight: (out, in)


@pytest.mark.parametrize("how", ["tensor", "parameter", "module+name", "module+index"])
def test_torch_weight_copied_into_projection_transposed(how: str) -> None:
    # facts.md "torch weights and projection matrices": the matrix becomes weight.T
    comp, proj = _three_to_five()
    module = torch.nn.Linear(3, 5, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(WEIGHT))
    spec = {"tensor": (module.state_dict()["weight"], None), "parameter": (module.weight, None),
            "module+name": ("weight", module), "module+index": (0, module)}[how]
    returned = comp.copy_torch_param_to_projection_matrix(proj if how != "tensor" else "P", *spec)
    assert_close(proj.parameters.matrix.get(), WEIGHT.T, rtol=1e-7, what="matrix")
    assert_close(returned, WEIGHT.T, rtol=1e-7, what="returned matrix")
    assert comp.projections[proj] is proj


def test_projection_matrix_copied_into_torch_param_in_place() -> None:
    comp, proj = _three_to_five()
    module = torch.nn.Linear(3, 5, bias=False)
    proj.parameters.matrix.set(WEIGHT.T.copy())
    returned = comp.copy_projection_matrix_to_torch_param("P", module.weight)
    assert_close(module.weight.detach().numpy(), WEIGHT, rtol=1e-6, what="torch weight")
    assert module.weight.requires_grad and module.weight.dtype == torch.float32
    assert_close(returned.numpy(), WEIGHT, rtol=1e-6, what="returned tensor")
    # a row slice writes into the module's tensor
    big = torch.nn.Linear(3, 10, bias=False)
    comp.copy_projection_matrix_to_torch_param(proj, "weight", big, slice(5, 10))
    assert_close(big.weight.detach().numpy()[5:], WEIGHT, rtol=1e-6, what="sliced rows")


@pytest.mark.parametrize("args, says", [
    (("P", torch.zeros(4)), "shape (1, 4)"),
    (("P", set()), "got set"),
    (("P", "weight"), "give the torch_module"),
    (("P", None, torch.nn.Linear(3, 5)), "torch_param is required"),
    (("P", "nope", torch.nn.Linear(3, 5)), "'nope' is not in the state_dict"),
    (("P", 3, torch.nn.Linear(3, 5)), "index 3 is out of range"),
    (("P", 0, "module"), "must be a torch.nn.Module"),
    (("P", torch.nn.Linear(3, 5)), "is a torch.nn.Module"),
    (("Q", torch.zeros(5, 3)), "'Q' is not in"),
    (("P", torch.zeros(5, 3), None, "rows"), "torch_slice must be a slice"),
])
@pytest.mark.parametrize("method", ["copy_torch_param_to_projection_matrix",
                                    "copy_projection_matrix_to_torch_param"])
def test_bad_torch_exchange_raises_autodiff_composition_error(method: str, args: tuple, says: str) -> None:
    comp, proj = _three_to_five()
    before = proj.matrix.copy()
    with pytest.raises(pnl.AutodiffCompositionError, match=re.escape(says)) as info:
        getattr(comp, method)(*args)
    assert method in str(info.value), str(info.value)
    assert_close(proj.matrix, before, rtol=0, what="matrix left unchanged")


# --- LossFunction(CROSS_ENTROPY) ---------------------------------------------------------


@pytest.mark.parametrize("variable, expected", [
    # facts.md "LossFunction CROSS_ENTROPY": PsyNeuLink 0.21's values
    ([[0.5, 0.5], [1.0, 0.0]], -0.8132616875182228),
    ([[0.2, 0.8], [0.0, 1.0]], -0.6676053812924272),
    ([[0.2, 0.8], [0.3, 0.4]], -0.6798310294509913),
    ([[0.1, 0.7, 0.2], [0.0, 1.0, 0.0]], -1.0874812859672416),
])
@pytest.mark.parametrize("normalize", [False, True])
def test_cross_entropy_loss_function(variable: list, expected: float, normalize: bool) -> None:
    f = pnl.LossFunction(loss=pnl.Loss.CROSS_ENTROPY, normalize=normalize)
    n = len(variable[0])
    assert_close(f(variable), expected / (n if normalize else 1), rtol=1e-12, what="CROSS_ENTROPY")
    m = pnl.ProcessingMechanism(function=f, default_variable=variable)
    assert_close(m.execute(variable), [[expected / (n if normalize else 1)]], rtol=1e-12, what="in a mechanism")


# --- learn(optimizations_per_minibatch=, batched_results=) ----------------------------------

MODES = [pnl.ExecutionMode.Python, pnl.ExecutionMode.PyTorch, pnl.ExecutionMode.LLVMRun]


def _two_to_one_to_three() -> tuple[pnl.AutodiffComposition, dict]:
    i = pnl.ProcessingMechanism(name="I", input_shapes=2)
    m = pnl.ProcessingMechanism(name="M")
    o = pnl.ProcessingMechanism(name="O", input_shapes=3)
    comp = pnl.AutodiffComposition(pathways=[i, m, o], name="C")
    data = {i: [[1, 2], [3, 4], [5, 6], [7, 8]],
            comp.target_input_mechanisms[0]: [[.1, .2, .3], [.4, .5, .6], [.7, .8, .9], [1.1, 1.2, 1.3]]}
    return comp, data


@pytest.mark.parametrize("mode", MODES)
def test_optimizations_per_minibatch_steps_each_trial_k_times(mode: pnl.ExecutionMode) -> None:
    # facts.md "optimizations_per_minibatch": PsyNeuLink 0.21, PyTorch mode, epochs=2, k=3
    comp, data = _two_to_one_to_three()
    value = comp.learn(inputs=data, num_trials=4, optimizations_per_minibatch=3, epochs=2, execution_mode=mode,
                       execute_in_additional_optimizations={comp.nodes["M"]: pnl.ALL, comp.nodes["O"]: range(2)})
    first = [3.0, 2.9547624, 2.9108668223808, 6.703368773323147, 6.216609618935782, 5.798059645769957]
    assert len(comp.results) == 24 and len(comp.torch_losses) == 24
    assert_close([r[0][0] for r in comp.results[:6]], first, rtol=1e-9, what="first unit of the first 6 results")
    assert_close(value, [[3.270156037635284, 3.3033439559873674, 3.3365318743394496]], rtol=1e-9,
                 what="returned value")
    assert_close([r[0][0] for r in comp.learning_results],
                 [2.9656179100852023, 3.8598324568441744, 3.538803321886473, 3.270156037635284], rtol=1e-9,
                 what="learning_results: the last 4 steps")
    assert comp.torch_sample_values[1].shape == (1, 1, 1, 3)
    assert_close(comp.torch_sample_values[1][0, 0, 0], comp.results[1][0], rtol=0, what="sample values")
    assert_close(comp.torch_targets[4][0, 0, 0], [.4, .5, .6], rtol=0, what="targets of step 5")


def test_optimizations_per_minibatch_refusals() -> None:
    comp, data = _two_to_one_to_three()
    with pytest.raises(pnl.CompositionError, match="optimizations_per_minibatch=2 and minibatch_size=2"):
        comp.learn(inputs=data, optimizations_per_minibatch=2, minibatch_size=2)
    with pytest.raises(pnl.DataError, match="'nope', which is not a node"):
        comp.learn(inputs=data, execute_in_additional_optimizations={"nope": None})
    with pytest.raises(pnl.DataError, match=r"expected None, ALL or optimization steps"):
        comp.learn(inputs=data, execute_in_additional_optimizations={comp.nodes["M"]: 1.5})


@pytest.mark.parametrize("mode", MODES)
def test_batched_results_one_entry_per_minibatch(mode: pnl.ExecutionMode) -> None:
    # facts.md "optimizations_per_minibatch": minibatch_size=3 of 4 trials, epochs=2, batched
    comp, data = _two_to_one_to_three()
    value = comp.learn(inputs=data, minibatch_size=3, epochs=2, batched_results=True, execution_mode=mode)
    assert [np.shape(r) for r in comp.results] == [(3, 1, 3), (1, 1, 3), (3, 1, 3), (1, 1, 3)]
    assert_close([r[0, 0, 0] for r in comp.results], [3.0, 13.633618533333335, 1.921811517602791, 9.107408971663553],
                 rtol=1e-9, what="first unit of each minibatch's first trial")
    assert_close(value, [[[9.107408971663553, 9.125842389457725, 9.144275807251898]]], rtol=1e-9, what="returned")


# --- small PsyNeuLink names ---------------------------------------------------------------


def test_interface_mechanisms_and_output_port_parameters() -> None:
    # facts.md "small names": PsyNeuLink 0.21's names and defaults
    comp = pnl.AutodiffComposition()
    assert comp.input_CIM.name == "autodiff_composition Input_CIM"
    assert comp.output_CIM.name == "autodiff_composition Output_CIM"
    assert comp.input_CIM.reportOutputPref == pnl.ReportOutput.OFF == comp.output_CIM.reportOutputPref
    m = pnl.TransferMechanism(input_shapes=2)
    comp.add_node(m)
    comp.run(inputs={m: [[1, 2]]})
    assert_close(m.output_port.parameters.value.get(comp), [1.0, 2.0], rtol=0, what="OutputPort value")


def test_clear_registry_restarts_default_names() -> None:
    pnl.clear_registry()
    first = pnl.TransferMechanism().name
    pnl.TransferMechanism()
    pnl.clear_registry()
    assert pnl.TransferMechanism().name == first == "TransferMechanism-0"
    with pytest.raises(pnl.UnsupportedError, match="registry"):
        pnl.clear_registry("DeferredInitRegistry")


@pytest.mark.parametrize("clamp", [pnl.SOFT_CLAMP, pnl.HARD_CLAMP, pnl.PULSE_CLAMP, pnl.NO_CLAMP])
def test_run_clamp_input_gives_the_same_values_in_a_feed_forward_net(clamp: str) -> None:
    a = pnl.TransferMechanism(name="a", input_shapes=2)
    b = pnl.TransferMechanism(name="b", input_shapes=1, function=pnl.Logistic)
    comp = pnl.Composition(pathways=[[a, pnl.MappingProjection(a, b, matrix=[[0.5], [-1.0]]), b]])
    out = comp.run(inputs={a: [[1.0, 2.0]]}, num_trials=3, clamp_input=clamp)
    assert_close(out, [[1 / (1 + np.exp(1.5))]], rtol=1e-12, what=clamp)
    assert len(comp.results) == 3
    with pytest.raises(ValueError, match="clamp_input='tight'"):
        comp.run(inputs={a: [[1.0, 2.0]]}, clamp_input="tight")


# --- LinearCombination and mechanisms with several InputPorts ------------------------------


def test_linear_combination_function_values() -> None:
    # facts.md "LinearCombination": PsyNeuLink 0.21's values for v = [[.2, .5, .9], [.3, .4, 2]]
    v = [[0.2, 0.5, 0.9], [0.3, 0.4, 2.0]]
    cases = [(pnl.LinearCombination(operation=pnl.SUM), [0.5, 0.9, 2.9]),
             (pnl.LinearCombination(operation=pnl.PRODUCT), [0.06, 0.2, 1.8]),
             (pnl.LinearCombination(operation=pnl.CROSS_ENTROPY), [-0.24079456, -0.45814537, 0.62383246]),
             (pnl.LinearCombination(operation=pnl.SUM, weights=[[2], [-1]]), [0.1, 0.6, -0.2]),
             (pnl.LinearCombination(operation=pnl.PRODUCT, exponents=[[1], [-1]]), [0.66666667, 1.25, 0.45]),
             (pnl.LinearCombination(scale=2, offset=1), [2.0, 2.8, 6.8])]
    for f, want in cases:
        assert_close(f(v), want, rtol=1e-7, what=repr(f))
    m = pnl.ProcessingMechanism(input_ports=["a", "b"], input_shapes=(3, 3),
                                function=pnl.LinearCombination(operation=pnl.PRODUCT))
    assert [p.name for p in m.input_ports] == ["a", "b"] and m.output_port.name == "OutputPort-0"
    assert_close(m.execute([[1, 2, 3], [4, 5, 6]]), [[4.0, 10.0, 18.0]], rtol=0, what="mechanism execute")


def _two_port_net(operation: str, scaled: bool) -> tuple[pnl.AutodiffComposition, dict, dict, tuple]:
    i1 = pnl.ProcessingMechanism(name="i1", input_shapes=2)
    i2 = pnl.ProcessingMechanism(name="i2", input_shapes=3)
    extra = {"scale": 2.0, "offset": 0.5} if scaled else {}
    h = pnl.ProcessingMechanism(name="h", input_ports=["a", "b"], input_shapes=(2, 2),
                                function=pnl.LinearCombination(operation=operation, **extra))
    o = pnl.ProcessingMechanism(name="o", input_shapes=1, function=pnl.Logistic())
    comp = pnl.AutodiffComposition(name="lc")
    comp.add_nodes([i1, i2, h, o])
    comp.add_projections([pnl.MappingProjection(sender=i1, receiver=h.input_ports[0], matrix=[[0.1, -0.2], [0.3, 0.4]]),
                          pnl.MappingProjection(sender=i2, receiver=h.input_ports[1],
                                                matrix=[[0.5, 0.1], [-0.3, 0.2], [0.2, 0.2]]),
                          pnl.MappingProjection(sender=h, receiver=o, matrix=[[0.7], [-0.6]])])
    x = {i1: [[1.0, 2.0], [0.5, -1.0]], i2: [[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]]}
    return comp, x, {o: [[1.0], [0.0]]}, (i1, i2)


# facts.md "LinearCombination": results of 3 epochs (lr .5) and a run() after, PsyNeuLink 0.21
# (PyTorch mode without scale/offset; Python mode with them: its PyTorch mode drops them)
LC_RESULTS = {
    ("product", False): ([0.5648820980443233, 0.5203872171036763, 0.7166390738373002, 0.49771107898678624,
                          0.8507093769902377, 0.475836736797206], 0.6897697093633932),
    ("sum", False): ([0.6130141761393355, 0.4487918022254133, 0.839864057798505, 0.3559518698756729,
                      0.8875043859628116, 0.2809007859058041], 0.7030846728932725),
    ("product", True): ([0.6392245365175633, 0.5613462504675972, 0.9536331671221334, 0.5025398602268933,
                         0.9721240893000014, 0.4439466691320534], 0.8186182162928445),
    ("sum", True): ([0.725119497789823, 0.4459127425385969, 0.9802428990264757, 0.1518117184727239,
                     0.982053959871973, 0.1133529553303767], 0.8079073734884183),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("operation, scaled", list(LC_RESULTS))
def test_linear_combination_of_input_ports_learns_in_every_mode(mode: pnl.ExecutionMode, operation: str,
                                                                 scaled: bool) -> None:
    comp, x, t, (i1, i2) = _two_port_net(operation, scaled)
    comp.learn(inputs=x, targets=t, epochs=3, learning_rate=0.5, execution_mode=mode)
    results, after = LC_RESULTS[(operation, scaled)]
    assert_close([r[0][0] for r in comp.results], results, rtol=1e-9, what="results")
    assert_close(comp.run(inputs={i1: [[1.0, 1.0]], i2: [[1.0, 1.0, 1.0]]}), [[after]], rtol=1e-9, what="run()")


def test_input_ports_refusals() -> None:
    with pytest.raises(ValueError, match="one size, got sizes \\(2, 3\\)"):
        pnl.ProcessingMechanism(name="p", input_shapes=(2, 3), function=pnl.LinearCombination)
    with pytest.raises(pnl.UnsupportedError, match="weights/exponents"):
        pnl.ProcessingMechanism(name="p", input_shapes=(2, 2), function=pnl.LinearCombination(weights=[[1], [2]]))
    with pytest.raises(ValueError, match="names 3 InputPorts but input_shapes gives 2"):
        pnl.ProcessingMechanism(name="p", input_ports=["a", "b", "c"], input_shapes=(2, 2),
                                function=pnl.LinearCombination)
    # a port nothing projects to has no value
    i = pnl.ProcessingMechanism(name="i", input_shapes=2)
    h = pnl.ProcessingMechanism(name="h", input_shapes=(2, 2), function=pnl.LinearCombination)
    comp = pnl.AutodiffComposition(name="half")
    comp.add_nodes([i, h])
    comp.add_projection(pnl.MappingProjection(matrix=np.eye(2)), i, h.input_ports[0])
    with pytest.raises(pnl.GraphError, match="InputPort 1 of node 'h' in 'half' has no incoming projection"):
        comp.run(inputs={i: [[1.0, 2.0]]})
    with pytest.raises(pnl.UnsupportedError, match="2 InputPorts"):
        comp.to_mdf()


def test_loss_function_and_composition_optimizer_type() -> None:
    # facts.md "small names": None until _build_pytorch_representation(), then torch's loss
    m1, m2 = pnl.TransferMechanism(), pnl.TransferMechanism()
    adc = pnl.AutodiffComposition(loss_spec=pnl.Loss.CROSS_ENTROPY)
    adc.add_linear_processing_pathway([m1, m2])
    assert adc.loss_function is None
    adc._build_pytorch_representation()
    value = adc.loss_function(torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.0]))
    assert_close(float(value), 1.3132616875182228, rtol=1e-6, what="cross entropy of [2, 1] for class 1")
    assert pnl.Composition(optimizer_type="sgd") is not None
    with pytest.raises(pnl.UnsupportedError, match="optimizer_type='adam'"):
        pnl.Composition(optimizer_type="adam")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_soft_margin_loss_spec(mode: pnl.ExecutionMode, reduction: str) -> None:
    # facts.md "SoftMarginLoss": PsyNeuLink 0.21, PyTorch mode, 3 epochs of XOR with targets -1/1
    xin = pnl.TransferMechanism(name="xor_in", default_variable=np.zeros(2))
    hid = pnl.TransferMechanism(name="xor_hid", default_variable=np.zeros(3), function=pnl.Logistic())
    out = pnl.TransferMechanism(name="xor_out", default_variable=np.zeros(1), function=pnl.Logistic())
    xor = pnl.AutodiffComposition(loss_spec=torch.nn.SoftMarginLoss(reduction=reduction), learning_rate=0.5)
    assert xor.loss_spec is (pnl.Loss.SOFT_MARGIN_SUM if reduction == "sum" else pnl.Loss.SOFT_MARGIN)
    for m in (xin, hid, out):
        xor.add_node(m)
    xor.add_projection(sender=xin, projection=pnl.MappingProjection(matrix=[[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]),
                       receiver=hid)
    xor.add_projection(sender=hid, projection=pnl.MappingProjection(matrix=[[0.7], [-0.8], [0.9]]), receiver=out)
    xor.learn(inputs={"inputs": {xin: [[0, 0], [0, 1], [1, 0], [1, 1]]}, "targets": {out: [[-1], [1], [1], [-1]]},
                      "epochs": 3}, execution_mode=mode)
    assert_close([r[0][0] for r in xor.results[-4:]],
                 [0.5728131995115049, 0.5143869058836862, 0.594632691341966, 0.5620949570290519], rtol=1e-9,
                 what="last epoch's results")
    assert_close(xor.losses[-2:], [0.4393931195844296, 1.0131792757174094], rtol=1e-9, what="last losses")


@pytest.mark.parametrize("mode", MODES)
def test_input_ports_side_by_side_each_with_its_output_port(mode: pnl.ExecutionMode) -> None:
    # facts.md "InputPorts side by side": PsyNeuLink 0.21, PyTorch mode (its Python mode fails here)
    i = pnl.ProcessingMechanism(name="i", input_shapes=2)
    h = pnl.ProcessingMechanism(name="h", input_shapes=(2, 3), function=pnl.Tanh())
    o = pnl.ProcessingMechanism(name="o", input_shapes=2, function=pnl.Logistic())
    assert [p.name for p in h.output_ports] == ["InputPort-0", "InputPort-1"]
    assert [p.name for p in pnl.TransferMechanism(input_shapes=(2, 3)).output_ports] == ["RESULT-0", "RESULT-1"]
    comp = pnl.AutodiffComposition(name="par", pathways=[
        [i, pnl.MappingProjection(i, h.input_ports[0], matrix=[[0.1, 0.2], [-0.3, 0.4]]), h,
         pnl.MappingProjection(h.output_ports[0], o, matrix=[[0.5, -0.1], [0.2, 0.3]]), o],
        [i, pnl.MappingProjection(i, h.input_ports[1], matrix=[[0.3, -0.2, 0.1], [0.2, 0.2, -0.4]]), h,
         pnl.MappingProjection(h.output_ports[1], o, matrix=[[0.1, 0.1], [-0.5, 0.2], [0.3, -0.3]]), o]])
    comp.learn(inputs={i: [[1.0, 2.0], [-1.0, 0.5], [0.3, 0.3]]}, targets={o: [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]},
               epochs=2, learning_rate=0.5, execution_mode=mode)
    assert_close([r[0] for r in comp.results[-3:]],
                 [[0.5021555031540731, 0.5907437059251287], [0.40000724337595883, 0.5395732541090877],
                  [0.5313516707785503, 0.5046993381326949]], rtol=1e-9, what="last epoch's results")
    assert_close(comp.run(inputs={i: [[1.0, 1.0]]}), [[0.5958916542268887, 0.5137422387463553]], rtol=1e-9,
                 what="run()")
    assert_close(h.output_ports[1].value, [0.4753432664303978, -0.30113203740617, -0.11327618153265775], rtol=1e-9,
                 what="second OutputPort's value")
    assert_close(h.output_ports[0].value, [0.01874389839581101, 0.5280537693995709], rtol=1e-9,
                 what="first OutputPort's value")


def test_input_ports_side_by_side_refusals() -> None:
    with pytest.raises(pnl.UnsupportedError, match="elementwise functions only"):
        pnl.ProcessingMechanism(name="s", input_shapes=(2, 3), function=pnl.SoftMax())
    a = pnl.ProcessingMechanism(name="a", input_shapes=2)
    out = pnl.ProcessingMechanism(name="out", input_shapes=(2, 3))
    comp = pnl.AutodiffComposition(name="two_out", pathways=[[a, pnl.MappingProjection(a, out.input_ports[0]), out]])
    comp.add_projection(pnl.MappingProjection(matrix=np.ones((2, 3))), a, out.input_ports[1])
    with pytest.raises(pnl.GraphError, match="OUTPUT node 'out' of 'two_out' has 2 OutputPorts"):
        comp.run(inputs={a: [[1.0, 2.0]]})
    with pytest.raises(pnl.CompositionError, match="has 2 OutputPorts; learning needs one value"):
        pnl.Composition(name="c").add_backpropagation_learning_pathway([a, pnl.MappingProjection(a, out.input_ports[0]),
                                                                       out])


def test_one_trial_of_targets_serves_every_input_trial() -> None:
    # facts.md "InputPorts side by side": PsyNeuLink repeats a single target trial
    a = pnl.ProcessingMechanism(name="a", input_shapes=2)
    b = pnl.ProcessingMechanism(name="b", input_shapes=2)
    comp = pnl.AutodiffComposition([a, b], name="c")
    comp.learn(inputs={a: [[0, 0], [0, 1], [1, 0], [1, 1]]}, targets={b: [[1.0, 2.0]]}, learning_rate=0.1)
    assert_close([r[0] for r in comp.results], [[0, 0], [0, 1], [1, 0], [1.1, 1.3]], rtol=1e-12, what="results")


@pytest.mark.parametrize("mode", MODES)
def test_named_output_ports_carry_the_value(mode: pnl.ExecutionMode) -> None:
    # facts.md "named OutputPorts": PsyNeuLink 0.21 (both FIRST and SECOND are the value; learning
    # results of i (2) -> h1 (3) -> h (3, FIRST/SECOND) -> o1 (3) / o2 (5), 5 trials, lr .01)
    m = pnl.ProcessingMechanism(input_shapes=3, output_ports=["FIRST", "SECOND"])
    m.execute([1.0, 2.0, 3.0])
    assert [p.name for p in m.output_ports] == ["FIRST", "SECOND"]
    assert_close([p.value for p in m.output_ports], [[1.0, 2.0, 3.0]] * 2, rtol=0, what="port values")
    with pytest.raises(pnl.UnsupportedError, match="MEAN"):
        pnl.TransferMechanism(input_shapes=3, output_ports=["RESULT", "MEAN"])
    i = pnl.ProcessingMechanism(name="i", input_shapes=2)
    h1 = pnl.ProcessingMechanism(name="h1", input_shapes=3)
    h = pnl.ProcessingMechanism(name="h", input_shapes=3, output_ports=["FIRST", "SECOND"])
    o1, o2 = pnl.ProcessingMechanism(name="o1", input_shapes=3), pnl.ProcessingMechanism(name="o2", input_shapes=5)
    comp = pnl.AutodiffComposition([[i, h1, h, pnl.MappingProjection(h.output_ports[0], o1), o1],
                                    [i, h1, h, pnl.MappingProjection(h.output_ports[1], o2), o2]], name="two")
    targets = {t: t.value for t in comp.target_input_mechanisms}
    comp.learn(inputs={i: [[0, 0], [0, 1], [1, 0], [1, 1]]}, targets=targets, learning_rate=0.01, num_trials=5,
               execution_mode=mode)
    assert_close([comp.results[-2][0][0], comp.results[-2][1][0]], [1.17877, 3.58366], rtol=1e-5,
                 what="4th trial's outputs")


# --- LossFunction and mechanisms executed compiled -----------------------------------------


@pytest.mark.parametrize("loss", [pnl.Loss.L0, pnl.Loss.L1, pnl.Loss.SSE, pnl.Loss.MSE, pnl.Loss.POISSON_NLL,
                                  pnl.Loss.CROSS_ENTROPY])
@pytest.mark.parametrize("normalize", [False, True])
def test_loss_function_compiled_equals_numpy(loss: pnl.Loss, normalize: bool) -> None:
    v = np.array([[0.2, 0.8, 0.5], [0.3, 0.4, 0.9]])
    f = pnl.LossFunction(default_variable=v, loss=loss, normalize=normalize)
    compiled = f.execute(v, execution_mode=pnl.ExecutionMode.LLVMRun)
    assert_close(compiled, f(v), rtol=1e-12, atol=1e-15, what=f"{loss} compiled")
    m = pnl.ProcessingMechanism(function=f, default_variable=v)
    assert_close(m.execute(v, execution_mode=pnl.ExecutionMode.LLVMRun), [[f(v)]], rtol=1e-12, atol=1e-15,
                 what="in a mechanism")
    if loss is pnl.Loss.CROSS_ENTROPY:  # facts.md "LossFunction CROSS_ENTROPY"
        assert_close(pnl.LossFunction(loss=loss).execute([[0.5, 0.5], [1.0, 0.0]], pnl.ExecutionMode.LLVMRun),
                     -0.8132616875182228, rtol=1e-12, what="PsyNeuLink's value")


def test_mechanism_compiled_execute() -> None:
    m = pnl.TransferMechanism(input_shapes=3, function=pnl.Logistic(gain=2.0, bias=0.5))
    x = [[0.1, -1.0, 2.0]]
    assert_close(m.execute(x, execution_mode=pnl.ExecutionMode.LLVMRun), m.execute(x), rtol=1e-12, what="Logistic")
    with pytest.raises(pnl.UnsupportedError, match="Python or LLVMRun"):
        m.execute(x, execution_mode=pnl.ExecutionMode.PyTorch)


def test_integration_rate_is_taken_and_checked() -> None:
    assert pnl.TransferMechanism(integration_rate=0.25).integration_rate == 0.25
    with pytest.raises(ValueError, match="integration_rate must be a number in \\[0, 1\\], got 2"):
        pnl.TransferMechanism(name="t", integration_rate=2)
    with pytest.raises(pnl.UnsupportedError, match="integrator_mode=True"):
        pnl.TransferMechanism(integrator_mode=True, integration_rate=0.5)


def test_torch_sample_values_are_built_when_read_and_span_learn_calls() -> None:
    # they are kept unbuilt until read (one array per minibatch costs more than a small learn());
    # reading between, after and across learn() calls must give every minibatch in order
    comp, data = _two_to_one_to_three()
    comp.learn(inputs=data, epochs=2, execution_mode=pnl.ExecutionMode.Python)
    first = [v.copy() for v in comp.torch_sample_values]
    comp.learn(inputs=data, epochs=1, execution_mode=pnl.ExecutionMode.Python)
    assert len(comp.torch_sample_values) == len(comp.torch_targets) == 12, len(comp.torch_sample_values)
    for k, v in enumerate(first):
        assert_close(comp.torch_sample_values[k], v, rtol=0, what=f"minibatch {k} after a second learn()")
    assert_close([v[0, 0, 0] for v in comp.torch_sample_values], [r[0] for r in comp.results], rtol=0,
                 what="each minibatch's sample is that trial's result")
    comp.torch_sample_values = []
    comp.learn(inputs=data, epochs=1, execution_mode=pnl.ExecutionMode.Python)
    assert len(comp.torch_sample_values) == 4 and len(comp.torch_targets) == 16
