"""Bag tools without rclpy: KITTI raw drive -> rosbag2 (kitti2bag), bag messages, player."""
