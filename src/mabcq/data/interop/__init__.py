"""Other offline-RL data formats in and out of the per-agent files.

minari_io (Minari datasets, both ways), omar (OMAR's per-agent .npy files), omiga (OMIGA's joint
HDF5), ogmarl (OG-MARL's Flashbax vaults). Each importer only reads its source into arrays;
`common` turns them into validated per-agent datasets and writes them. Layouts and their
sources: docs/data_formats.md.
"""
