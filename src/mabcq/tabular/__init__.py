"""Exact tabular MABCQ for finite cooperative problems: the paper's matrix game and any one-step
game or deterministic finite MDP.

game.py (the problem), datasets.py (per-agent data B_i, or its infinite-data limit),
transitions.py (each agent's P_Bi and the weights lambda_vd, lambda_tn), qiteration.py
(decentralized Q-iteration, Theorem 1, Proposition 1 checks), spec.py (game files and flags),
tables.py (Tables 2-4), commands.py (`mabcq matrix`). NumPy only; nothing is imported here so
`mabcq --help` stays fast.
"""
