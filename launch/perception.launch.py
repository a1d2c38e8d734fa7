"""Start the HyperSeg perception node: `ros2 launch hyperseg_ros perception.launch.py`.

Example: ros2 launch hyperseg_ros perception.launch.py namespace:=robot image_topic:=/camera/image_raw
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("hyperseg_ros")
    arguments = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "perception.yaml"),
                              description="YAML file with the node's parameters"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its relative topics"),
        DeclareLaunchArgument("image_topic", default_value="image",
                              description="camera topic to segment (sensor_msgs/Image)"),
        DeclareLaunchArgument("command_topic", default_value="command",
                              description="plain-text command topic (std_msgs/String)"),
        DeclareLaunchArgument("device", default_value="auto",
                              description="auto | cpu | cuda | cuda:N"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="model directory; empty = the embedded default model"),
    ]
    # Large best-effort images need a bigger Fast DDS shared-memory segment (see README).
    fastdds_profile = SetEnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE",
        EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                            default_value=os.path.join(share, "config", "fastdds_shm.xml")))
    node = Node(
        package="hyperseg_ros",
        executable="perception_node",
        name="hyperseg_perception",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"),
                    {"device": LaunchConfiguration("device"), "model_path": LaunchConfiguration("model_path")}],
        remappings=[("image", LaunchConfiguration("image_topic")),
                    ("image/compressed", [LaunchConfiguration("image_topic"), "/compressed"]),
                    ("command", LaunchConfiguration("command_topic"))],
        output="screen",
        emulate_tty=True,
    )
    return LaunchDescription([*arguments, fastdds_profile, node])
