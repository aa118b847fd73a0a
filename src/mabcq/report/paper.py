"""The paper's published numbers that the report prints beside ours (METHOD.md restates them).

Keyed by (task, method); mean and std over the paper's 5 seeds, on the paper's own datasets.
"""

from __future__ import annotations

# Table 6: return after 5 x 10^4 updates.
TABLE6_RETURN: dict[tuple[str, str], tuple[float, float]] = {
    ("halfcheetah-2x3", "mabcq"): (1905, 126), ("halfcheetah-2x3", "bcq"): (1384, 360),
    ("walker2d-2x3", "mabcq"): (2498, 256), ("walker2d-2x3", "bcq"): (1324, 662),
    ("hopper-3x1", "mabcq"): (1383, 443), ("hopper-3x1", "bcq"): (566, 89),
    ("ant-4x2", "mabcq"): (3027, 178), ("ant-4x2", "bcq"): (2573, 637),
}

# Table 5: extrapolation error |(1/N) sum_i Q_i(s, a_i) - R|.
TABLE5_EXTRAPOLATION: dict[tuple[str, str], tuple[float, float]] = {
    ("halfcheetah-2x3", "mabcq"): (98.4, 31.3), ("halfcheetah-2x3", "bcq"): (97.2, 29.1),
    ("walker2d-2x3", "mabcq"): (55.0, 9.6), ("walker2d-2x3", "bcq"): (91.5, 35.4),
    ("hopper-3x1", "mabcq"): (28.1, 3.4), ("hopper-3x1", "bcq"): (65.8, 6.4),
    ("ant-4x2", "mabcq"): (180.2, 22.2), ("ant-4x2", "bcq"): (231.3, 47.0),
}

# Table 7: ms per update, Intel i7-8700 CPU + NVIDIA GTX 1080Ti.
TABLE7_MS: dict[tuple[str, str], float] = {
    ("halfcheetah-2x3", "mabcq"): 18, ("halfcheetah-2x3", "bcq"): 10,
    ("walker2d-2x3", "mabcq"): 18, ("walker2d-2x3", "bcq"): 10,
    ("hopper-3x1", "mabcq"): 16, ("hopper-3x1", "bcq"): 9,
    ("ant-4x2", "mabcq"): 20, ("ant-4x2", "bcq"): 11,
}
TABLE7_HARDWARE = "Intel i7-8700 + NVIDIA GTX 1080Ti"

# The paper's scale (Table 8 and section 4.2), for the reduced-run warning.
PAPER_SCALE = "5 seeds, 5 x 10^4 updates, batch 1024, 10^6 transitions per agent"
