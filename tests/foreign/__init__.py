"""The foreign-model acceptance corpus of issue 9: models, exporters, checks, known failures.

Everything here is generated at test time (no ONNX file is committed): ``models`` lists
small seeded torch modules, ``export`` writes them (and sklearn MLPs) to ONNX,
``checks`` compares mdfx with onnxruntime and with the original's training, and
``known_failures`` lists what the default CI subset expects to fail today.
"""
