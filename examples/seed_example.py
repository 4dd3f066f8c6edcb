"""The example from PsyNeuLink's AutodiffComposition docs, with only the import changed.

Run: .venv/bin/python examples/seed_example.py
"""

import numpy as np

import mdfx as pnl  # was: import psyneulink as pnl

# Set up PsyNeuLink Components
my_mech_1 = pnl.TransferMechanism(function=pnl.Linear, size=3)
my_mech_2 = pnl.TransferMechanism(function=pnl.Linear, size=2)
my_projection = pnl.MappingProjection(matrix=np.random.randn(3, 2),
                                      sender=my_mech_1,
                                      receiver=my_mech_2)
# Create AutodiffComposition
my_autodiff = pnl.AutodiffComposition()
my_autodiff.add_node(my_mech_1)
my_autodiff.add_node(my_mech_2)
my_autodiff.add_projection(sender=my_mech_1, projection=my_projection, receiver=my_mech_2)
# Specify inputs and targets
my_inputs = {my_mech_1: [[1, 2, 3]]}
my_targets = {my_mech_2: [[4, 5]]}
input_dict = {"inputs": my_inputs, "targets": my_targets, "epochs": 2}
# Run Composition in learnng mode
my_autodiff.learn(inputs=input_dict)
# Run Composition in test mode
print("after learning:", my_autodiff.run(inputs=input_dict['inputs']))

# Create outer composition
my_outer_composition = pnl.Composition()
my_outer_composition.add_node(my_autodiff)
# Specify dict containing inputs and targets for nested Composition
training_input = {my_autodiff: input_dict}
# Run in learning mode
result1 = my_outer_composition.learn(inputs=training_input)
print("nested learn:", result1)
print("losses:", my_autodiff.losses)
