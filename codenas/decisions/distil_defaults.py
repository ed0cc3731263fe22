"""The defaults of ``codenas distil``, in a module of their own so that ``codenas --help`` can
show them without importing torch.

Chosen on the dev task only (a generated ``teacher`` problem, ``task_seed=0``, a 64-64 student
of a 256-256 teacher: ``benchmarks/distillation.py --choose``; docs/editing.md) by validation
accuracy: KD at T=1, alpha=0.5 with the ``noise`` transfer set was the best of 16 arms (+1.56
pp over scratch; T=2 and T=4 with the same transfer set within 0.5 pp of it; KD without a
transfer set at or below scratch at every T; the teacher's init and the hint term no better).
Reported on held-out problems (other task seeds and sizes).
"""

DEFAULT_TEMPERATURE = 1.0
DEFAULT_ALPHA = 0.5
DEFAULT_HINT = 0.0
DEFAULT_TRANSFER = "noise"
DEFAULT_INIT = "random"
