"""bgtrain's benchmarks: ``python -m bench [--quick] [NAME...]`` writes BENCHMARKS.md.

Each benchmark is a module with ``NAME``, ``TITLE``, ``TARGET`` and ``run(quick) ->
list[Row]``; the shared timing harness is :mod:`bench.harness`. Figures are medians of
repeats with their min-max, measured side by side with the peer in the same run.
"""
