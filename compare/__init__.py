"""The compare tool: list, summary, crosscheck, bench, train and gradcheck across the frameworks.

Modules: `cli` (the command line; `python -m compare` with no arguments runs `tour`), one module per
sub-command (`listing`, `summary`, `crosscheck`, `bench`), and their helpers: `flops` (the one
framework-neutral multiply-add counter), `layers` (layer tables under canonical names), `runners`
and `worker` (how each framework is benchmarked, in its own process), `report` (tables and plots),
`progress`, `common`, and `baseline` (a bare timing loop to check the harness's overhead against).
"""
