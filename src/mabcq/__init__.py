"""MABCQ: offline, fully decentralized multi-agent RL with BCQ and two importance weights."""

__version__ = "0.1.0"
