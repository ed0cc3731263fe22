"""The defaults of ``codenas edit``, in a module of their own so that ``codenas --help`` can
show them without importing torch.

Chosen on one dev network and two dev rules (a factors MLP 64-32, seed 0; docs/editing.md), not
on the rules and seeds ``benchmarks/editing.py`` reports: rank 1 (ROME's rank-one edit)
generalised to held-out rows of the rule as well as rank 4 with less collateral change; a
ridge of 1e-3 of the mean eigenvalue kept the second moment invertible without flattening it.
"""

DEFAULT_EXEMPLARS = 16
DEFAULT_RANK = 1
DEFAULT_RIDGE = 1e-3
DEFAULT_FINETUNE_STEPS = 50

#: ``--method``: ``head`` rewrites the head's weights (same architecture); ``unit`` adds one
#: unit to the last hidden layer, a detector of the rule's rows wired to the rule's class.
METHODS = ("head", "unit")
DEFAULT_METHOD = "head"
#: ``--method unit``: the detector fires above this quantile of the ordinary training rows'
#: probe scores (chosen on the dev rules and seed 0: 0.99, 0.995 and 0.999 were within 1 pp).
DEFAULT_FIRE_QUANTILE = 0.995
