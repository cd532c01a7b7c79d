"""ROS-free core: plain Python and NumPy."""
