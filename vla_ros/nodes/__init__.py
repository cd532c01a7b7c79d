"""Thin ROS 2 nodes: parameters, topics, services and timers around the ROS-free core."""
