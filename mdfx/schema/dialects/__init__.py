"""One small module per MDF dialect: ``detect(model, graph) -> bool`` and ``read(model, graph) -> Graph``.

``model`` and ``graph`` are plain dicts (modeci-mdf's ``to_dict()`` shape:
``{model_id: {..., "graphs": {graph_id: {...}}}}``), so a dialect can read
files that modeci-mdf itself cannot parse (e.g. PsyNeuLink 0.9's v0.1 shapes).
"""
