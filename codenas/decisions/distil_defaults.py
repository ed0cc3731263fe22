"""The defaults of ``codenas distil``, in a module of their own so that ``codenas --help`` can
show them without importing torch.

The best of the grid on the dev tasks (digits, factors with another mixing map:
``benchmarks/distillation.py --choose``; docs/editing.md), by validation accuracy; differences
were within the seeds' spread. Not chosen on the tasks the benchmark reports.
"""

DEFAULT_TEMPERATURE = 1.0
DEFAULT_ALPHA = 0.5
DEFAULT_HINT = 0.0
