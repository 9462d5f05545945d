"""Training, evaluation and export (installed as ``fer_edge.training``; needs the [train] extra).

Nothing at this package's top level imports torch, so the CLI can list the training
verbs on an edge install and explain how to get the extra when one is called.
"""
