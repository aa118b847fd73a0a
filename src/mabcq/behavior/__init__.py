"""SAC behavior policies: training, snapshots, and their use as decentralized agent policies."""
