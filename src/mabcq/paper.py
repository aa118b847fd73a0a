"""The paper's settings that several layers need: its tasks, its methods, its eps per task.

Constants only (no imports), at the bottom of the package: the command line's flag kinds, the
learners' configs, the grid and the report all read them here. The paper's published results
that the report prints beside ours are in mabcq.report.paper.
"""

from __future__ import annotations

# The paper's four MaMuJoCo tasks (Table 8), in its column order.
PAPER_TASKS = ("halfcheetah-2x3", "walker2d-2x3", "hopper-3x1", "ant-4x2")
# The methods of Table 6 (section 4.2): MABCQ, its two ablations, BCQ, DDPG, Behavior.
PAPER_METHODS = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "ddpg", "behavior")
# The BCQ family at Table 8's "VAE hidden space 10" read literally as the latent size (the main
# rows use 2 x the action size: issue 17): rows of their own, 3 seeds on the four tasks
# (`mabcq reproduce --methods mabcq-latent10,... --seeds 0,1,2`; docs/reproduce.md).
LITERAL_METHODS = ("mabcq-latent10", "mabcq-latent10-no-tn", "mabcq-latent10-no-vd",
                   "bcq-latent10")

# Optimism level eps per task (paper Table 8). Tasks not listed use the default 0.8.
TASK_OPTIMISM: dict[str, float] = {
    "halfcheetah-2x3": 0.80,
    "walker2d-2x3": 0.48,
    "hopper-3x1": 0.80,
    "ant-4x2": 0.64,
}

# The paper's eps sweep (Figure 5; Table 8's values are multiples of 0.16).
EPS_SWEEP: tuple[float, ...] = (0.0, 0.16, 0.32, 0.48, 0.64, 0.8)
