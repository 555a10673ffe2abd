"""The peers bgtrain is measured against, each a script the benchmarks run as a process."""
