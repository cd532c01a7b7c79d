"""Visualisation of runs with rerun: live (`viz:=rerun`, nodes/rerun_node.py) and from bags (`vla-ros view`)."""
