"""How often does the report's 95% CI over a few seeds hold the true mean?

    PYTHONPATH=src python scripts/bootstrap_coverage.py [--sizes 2,3,4,5,10] [--trials 2000]

Draws TRIALS samples of n values from a normal distribution (numpy seed --seed), computes the
report's percentile bootstrap CI (tables.bootstrap_ci: 10 000 resamples, numpy seed 0) and the
Student-t CI (tables.student_t_ci) of each, and prints, per n, the share of samples whose CI
holds the true mean and the bootstrap's mean width over the t-interval's. Why: the study
(docs/study.md) decides on 5 seeds, and a percentile bootstrap over 5 values is known to be too
narrow; this measures by how much, with the report's own functions. Exit 0; 2 on bad flags.
"""

import argparse
import sys

import numpy as np

from mabcq.report.tables import bootstrap_ci, student_t_ci


def coverage(n: int, trials: int, seed: int) -> tuple[float, float, float]:
    """(bootstrap coverage, t coverage, mean bootstrap width / mean t width) over TRIALS."""
    samples = np.random.default_rng(seed).standard_normal((trials, n))
    boot = np.array([bootstrap_ci(sample) for sample in samples])
    student = np.array([student_t_ci(sample) for sample in samples])

    def holds(bounds: np.ndarray) -> float:
        return float(np.mean((bounds[:, 0] <= 0.0) & (bounds[:, 1] >= 0.0)))

    width = np.mean(boot[:, 1] - boot[:, 0]) / np.mean(student[:, 1] - student[:, 0])
    return holds(boot), holds(student), float(width)


def sizes(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be integers like 2,3,5, got {text!r}") from None
    if any(value < 2 for value in values):
        raise argparse.ArgumentTypeError(f"every size must be 2 or more, got {text!r}")
    return values


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=sizes, default=[2, 3, 4, 5, 10],
                        help="numbers of seeds n, comma-separated (default 2,3,4,5,10)")
    parser.add_argument("--trials", type=int, default=2000, help="samples per n (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="numpy seed of the draws (default 0)")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be 1 or more, got {args.trials}")
    print(f"normal draws, {args.trials} samples per n, nominal 95%")
    print("| n | percentile bootstrap covers | Student-t covers | bootstrap width / t width |")
    print("|---|---|---|---|")
    for n in args.sizes:
        boot, student, width = coverage(n, args.trials, args.seed)
        print(f"| {n} | {boot:.1%} | {student:.1%} | {width:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
