"""The compare tool: list, summary, crosscheck, bench, train and gradcheck across the frameworks.

It reads the frameworks only through the backend contract (`zoo.contract`) and the registry
(`zoo.FRAMEWORKS`), so a new framework needs nothing here.

Modules: `cli` (the command line; `python -m compare` with no arguments runs `tour`), one module per
sub-command (`listing`, `summary`, `crosscheck`, `train`, `gradcheck`; `bench` is a package of its own),
and their helpers: `flops` (the one framework-neutral multiply-add counter), `layers` (layer tables under
canonical names), `worker` (runs one framework's bench runner in its own process), `report` (tables and
plots), `progress`, `datasets`, and `baseline` (a bare timing loop to check the harness's overhead
against). What the sub-commands share: `options` (the shared command-line options and the one error
path), `knobs` (`--set`), `frameworks` (which are installed, and plugins), `files` (atomic writes, valid
JSON) and `tables`.
"""
