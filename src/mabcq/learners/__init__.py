"""Per-agent offline RL learners (MABCQ and its baselines) and the batched multi-agent step.

Import what you need from the submodules: base (interface, make_learner), batched (all agents
in one compiled step, single-agent path), export (one agent's policy file). Kept import-light:
nothing here imports JAX until a submodule is used.
"""
