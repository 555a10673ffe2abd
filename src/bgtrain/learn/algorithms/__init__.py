"""Training algorithms, by the name a model file's ``meta.algorithm`` records."""
