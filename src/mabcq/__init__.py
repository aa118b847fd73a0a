"""MABCQ: offline, fully decentralized multi-agent RL (BCQ + value deviation + transition normalization)."""

__version__ = "0.1.0"
