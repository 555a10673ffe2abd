"""Playing games beside the learner: the game loop, the fleet of game processes, the run.

``actor`` is the game loop (numpy only), ``fleet`` runs it in processes behind a small
interface, ``session`` wires games, learner, console and stop conditions together.
"""
