"""Many hosts: the inventory, rolling batches, the runner, the run's report and display."""
