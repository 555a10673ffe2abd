"""The monitor: reads a training root's files (never talks to the learner) and shows them.

``snapshot`` gathers the figures (cheaply: no rescans of the archive, metrics read
incrementally), ``dashboard`` draws them with rich, ``plot`` draws learning curves.
"""
