"""The defaults of ``codenas distil``, in a module of their own so that ``codenas --help`` can
show them without importing torch.

Chosen on the dev task only (a generated ``teacher`` problem, ``task_seed=0``:
``benchmarks/distillation.py --choose``; docs/editing.md), by validation accuracy, and reported
on held-out problems (other task seeds and sizes).
"""

DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.9
DEFAULT_HINT = 0.0
DEFAULT_TRANSFER = "mixup"
DEFAULT_INIT = "random"
