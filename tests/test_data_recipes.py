"""Recipes: part proportions, agent slices, shared early replay, and re-simulation of files."""

from pathlib import Path

import numpy as np
import pytest

from mabcq.behavior.sac import SACConfig
from mabcq.behavior.train import BehaviorConfig, train_behavior
from mabcq.data.build import Behavior, build_datasets, collect_part
from mabcq.data.io import load_dataset_dir
from mabcq.data.recipes import RECIPES, episode_ordered_prefix, part_sizes
from mabcq.envs.rollout import episode_seed
from mabcq.envs.tasks import get_task, make_env
from mabcq.errors import UserError

TINY = BehaviorConfig(total_steps=192, num_envs=2, start_steps=64, update_every=8,
                      updates_per_transition=0.25, eval_every=64, eval_episodes=1,
                      eval_max_steps=20, checkpoint_every=96,
                      sac=SACConfig(hidden_sizes=(16, 16), batch_size=32))
TASK = get_task("hopper-3x1")
SIZE = 150


@pytest.fixture(scope="module")
def behavior_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("behavior")
    train_behavior(TASK, TINY, out, seed=1, progress=False)
    return out


@pytest.fixture(scope="module")
def paper_dir(behavior_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("paper")
    build_datasets(TASK, "paper", SIZE, behavior_dir, out, seed=5, noise=0.2, num_envs=2,
                   progress=False)
    return out


def test_part_sizes_follow_the_fractions() -> None:
    assert part_sizes(RECIPES["paper"], 1_000_000) == [200_000, 350_000, 350_000, 100_000]
    for size in (1, 7, 150, 999):
        sizes = part_sizes(RECIPES["paper"], size)
        assert sum(sizes) == size
        fractions = [part.fraction for part in RECIPES["paper"]]
        assert all(abs(s - f * size) < 1 for s, f in zip(sizes, fractions, strict=True))


def test_paper_files_have_the_parts_and_own_slices(paper_dir: Path) -> None:
    datasets = load_dataset_dir(paper_dir)
    assert len(datasets) == TASK.n_agents
    expected = part_sizes(RECIPES["paper"], SIZE)
    for agent, dataset in enumerate(datasets):
        assert len(dataset) == SIZE and dataset.actions.shape == (SIZE, 1)
        assert np.bincount(dataset.parts, minlength=4).tolist() == expected
        assert dataset.metadata["action_slice"] == list(TASK.action_slices[agent])
        assert dataset.metadata["part_sizes"] == expected
        noises = [d.get("noise") for d in dataset.metadata["part_details"][1:]]
        assert noises == [0.2, 0.2, 0.2]
    # The early part is the same SAC experience for every agent: states agree, slices differ.
    early = [d.parts == 0 for d in datasets]
    np.testing.assert_array_equal(datasets[0].observations[early[0]],
                                  datasets[2].observations[early[2]])


def test_agent_file_holds_its_slice_of_the_logged_joint_action(
        behavior_dir: Path, paper_dir: Path) -> None:
    datasets = load_dataset_dir(paper_dir)
    behavior = Behavior(TASK, behavior_dir)
    for agent in (0, 2):
        dataset = datasets[agent]
        details = dataset.metadata["part_details"][1]  # agent intermediate, others expert
        joint, _ = collect_part(behavior, RECIPES["paper"][1], agent, details["size"],
                                details["seed"], details["noise"], num_envs=2)
        in_part = dataset.parts == 1
        np.testing.assert_array_equal(dataset.actions[in_part],
                                      TASK.split_action(joint["actions"])[agent])
        np.testing.assert_array_equal(dataset.observations[in_part], joint["observations"])
        assert joint["actions"].shape[1] == TASK.joint_action_dim
    replay = episode_ordered_prefix(behavior.replay, int((datasets[1].parts == 0).sum()))
    np.testing.assert_array_equal(datasets[1].actions[datasets[1].parts == 0],
                                  replay["actions"][:, 1:2])


def test_file_rewards_and_next_states_match_the_simulator(
        behavior_dir: Path, paper_dir: Path) -> None:
    """Replay a file's first rollout episode in a fresh env: same rewards and next states."""
    dataset = load_dataset_dir(paper_dir)[1]
    behavior = Behavior(TASK, behavior_dir)
    details = dataset.metadata["part_details"][2]
    joint, _ = collect_part(behavior, RECIPES["paper"][2], 1, details["size"], details["seed"],
                            details["noise"], num_envs=2)
    rows = np.flatnonzero(dataset.parts == 2)
    env = make_env(TASK).unwrapped
    obs, _ = env.reset(seed=episode_seed(details["seed"], 0))
    np.testing.assert_array_equal(obs.astype(np.float32), dataset.observations[rows[0]])
    for k, row in enumerate(rows):
        obs, reward, terminated, *_ = env.step(joint["actions"][k])
        np.testing.assert_array_equal(obs.astype(np.float32), dataset.next_observations[row])
        assert np.float32(reward) == dataset.rewards[row]
        assert terminated == dataset.terminals[row]
        if terminated or dataset.timeouts[row]:
            break


def test_low_and_medium_replay_recipes(behavior_dir: Path, tmp_path: Path) -> None:
    build_datasets(TASK, "low", 100, behavior_dir, tmp_path / "low", seed=0, num_envs=2,
                   progress=False)
    low = load_dataset_dir(tmp_path / "low")
    assert low[0].metadata["parts"] == ["early", "all-intermediate"]
    assert np.bincount(low[0].parts).tolist() == [20, 80]
    build_datasets(TASK, "medium-replay", 10_000, behavior_dir, tmp_path / "mr", seed=0,
                   progress=False)
    medium = load_dataset_dir(tmp_path / "mr")
    step = Behavior(TASK, behavior_dir).levels["intermediate"]["step"]
    assert len(medium[0]) == step and set(medium[0].parts.tolist()) == {0}


def test_too_little_replay_is_a_user_error(behavior_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs 400 transitions of SAC's replay"):
        build_datasets(TASK, "paper", 2000, behavior_dir, tmp_path, progress=False)


def test_rebuild_keeps_finished_files_and_redoes_changed_ones(
        behavior_dir: Path, paper_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in paper_dir.glob("*.h5")}
    (paper_dir / "agent_1.h5").unlink()  # as if killed while building agent 1
    build_datasets(TASK, "paper", SIZE, behavior_dir, paper_dir, seed=5, noise=0.2, num_envs=2,
                   progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in paper_dir.glob("*.h5")}
    assert after["agent_0.h5"] == before["agent_0.h5"]
    assert after["agent_2.h5"] == before["agent_2.h5"] and "agent_1.h5" in after
    build_datasets(TASK, "paper", SIZE, behavior_dir, paper_dir, seed=6, noise=0.2, num_envs=2,
                   progress=False)
    assert load_dataset_dir(paper_dir)[0].metadata["seed"] == 6
