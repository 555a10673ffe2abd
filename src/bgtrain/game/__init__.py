"""The game side: what runs inside a game process.

Torch-free, numpy only (a test imports it with torch made unimportable): ``recorder``
writes each game as an episode file, ``policy`` plays a model file with numpy,
``gymnasium_games`` wraps Gymnasium environments, ``evaluation`` plays greedy games.
"""
