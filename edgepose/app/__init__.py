"""The application layer: the ``edgepose`` CLI (:mod:`edgepose.app.cli`, one module per
subcommand in :mod:`edgepose.app.commands`) and profiling (:mod:`edgepose.app.profiling`).
It may import every layer below it; nothing below imports it."""
