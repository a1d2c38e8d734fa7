"""Two perception nodes, one per camera, each in its own namespace (a node serves one camera).

Example:
  ros2 launch hyperseg_ros two_cameras.launch.py \\
      camera1_namespace:=front camera1_topic:=/front/image_raw \\
      camera2_namespace:=rear camera2_topic:=/rear/image_raw command_topic:=/speech/text
gives /front/hyperseg_perception and /rear/hyperseg_perception, publishing /front/segmentation and
/rear/segmentation; one text command topic reaches both. Each is perception.launch.py with that
camera's namespace and topic; the other arguments are the same for both (see --show-args). Each
node loads its own copy of the model.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription

CAMERAS = ("camera1", "camera2")
# the launch file of one node, next to this one (in the source tree as in share/hyperseg_ros/launch)
PERCEPTION_LAUNCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "perception.launch.py")
# perception.launch.py's arguments that are the same for both nodes
SHARED = ("params_file", "compressed", "command_topic", "model_path", "device", "managed")


def generate_launch_description():
    share = get_package_share_directory("hyperseg_ros")
    arguments = []
    for camera in CAMERAS:
        arguments += [
            DeclareLaunchArgument(f"{camera}_namespace", default_value=camera,
                                  description=f"namespace of the node serving {camera} (its segmentation, "
                                              "overlay, reset service and lifecycle services are there)"),
            DeclareLaunchArgument(f"{camera}_topic", default_value=f"/{camera}/image_raw",
                                  description=f"{camera}'s image topic, sensor_msgs/Image (with compressed:=true, "
                                              "<topic>/compressed)"),
        ]
    arguments += [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "perception.yaml"),
                              description="YAML file with both nodes' parameters"),
        DeclareLaunchArgument("compressed", default_value="false", choices=["true", "false"],
                              description="true: both nodes subscribe to <camera topic>/compressed"),
        DeclareLaunchArgument("command_topic", default_value="/command",
                              description="plain-text command topic (std_msgs/String) both nodes listen to; "
                                          "a relative name is per namespace"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="model directory for both nodes; empty = the embedded default model"),
        DeclareLaunchArgument("device", default_value="auto",
                              description="auto | cpu | cuda | cuda:N for both nodes"),
        DeclareLaunchArgument("managed", default_value="false", choices=["false", "true", "external"],
                              description="who drives both nodes' lifecycles (see perception.launch.py)"),
    ]
    # Each node: perception.launch.py given exactly these launch configurations (forwarding=False:
    # nothing else leaks in, and its own namespace / image_topic are not offered as arguments here).
    nodes = [
        GroupAction(forwarding=False, launch_configurations={
            "namespace": LaunchConfiguration(f"{camera}_namespace"),
            "image_topic": LaunchConfiguration(f"{camera}_topic"),
            **{name: LaunchConfiguration(name) for name in SHARED}},
            actions=[IncludeLaunchDescription(PythonLaunchDescriptionSource(PERCEPTION_LAUNCH))])
        for camera in CAMERAS
    ]
    return LaunchDescription([*arguments, *nodes])
