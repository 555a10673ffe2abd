"""Playing games beside the learner: ``bgtrain run``.

``engine`` is the seam where the learner and the games run (:class:`LocalEngine`: processes
on this machine) and the run's one interrupt handler; ``actor`` is a game process's loop
(numpy only), ``fleet`` the local game processes, ``learner_process`` the learner's;
``session`` follows a run (``accounting`` counts its reports, ``evaluations`` schedules
greedy evaluations, ``console`` says it); ``settings`` declares the run's settings once.
"""
