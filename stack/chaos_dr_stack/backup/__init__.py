"""The backup agent: snapshots and a continuous change log of the processor's database, and restores from them."""
