"""The sequencer as a replica set over etcd (DESIGN section 8): one leader commits each block
with one etcd transaction fenced by its term; every replica stores committed blocks."""
