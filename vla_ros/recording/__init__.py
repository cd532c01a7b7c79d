"""Recording: runs as MCAP bags (ROS 2 CDR, rosbag2's layout) and LeRobotDatasets (v3), and the way back.

- `bag`: write raw CDR messages to a rosbag2 MCAP bag (message definitions from the installed
  .msg files, metadata.yaml) and read any ROS 2 MCAP bag back (decoded with mcap-ros2-support);
- `drop_queue`: the bounded queue between subscription callbacks and the writer thread (drops, never blocks);
- `episode`: one episode of a bag as arrays on a fixed frame grid (cameras, state, commands, chunks, task);
- `video`: MP4 per camera through imageio-ffmpeg's ffmpeg (lossless RGB H.264 or yuv420p H.264);
- `lerobot`: LeRobotDataset v3.0 writer (one episode at a time) and reader;
- `export`: `vla-ros export BAG... --lerobot OUT --robot ROBOT`.

ROS-free except where a module says so: a bag recorded anywhere converts without a ROS install.
"""
