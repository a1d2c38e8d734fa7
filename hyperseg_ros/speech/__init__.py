"""Speech to commands, ROS-free: audio decoding and resampling, voice activity, the command grammar
(built from hyperseg_ros.world), the recogniser, and the pipeline the speech node wraps."""
