"""Start the HyperSeg perception node: `ros2 launch hyperseg_ros perception.launch.py`.

Examples:
  ros2 launch hyperseg_ros perception.launch.py namespace:=robot image_topic:=/camera/image_raw
  ros2 launch hyperseg_ros perception.launch.py image_topic:=/camera/image_raw compressed:=true
  ros2 launch hyperseg_ros perception.launch.py managed:=true      # configured + activated by launch
  ros2 launch hyperseg_ros perception.launch.py namespace:=robot cameras:=front,wrist   # one model, two cameras
  ros2 launch hyperseg_ros perception.launch.py speech:=true      # + speech_command: `audio` -> command
  ros2 launch --show-args hyperseg_ros perception.launch.py        # every argument, default, meaning

The node is a lifecycle node (`hyperseg_perception`, in `namespace`). `managed` decides who drives
its transitions: the node itself (false), this launch file through launch_ros lifecycle events
(true), or a lifecycle manager such as nav2_lifecycle_manager (external). `speech:=true` adds the
speech node (`speech_command`, same namespace and lifecycle rule), publishing on the command topic.
"""
import json
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitution import Substitution
from launch.substitutions import AndSubstitution, EnvironmentVariable, EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription

NODE_NAME = "hyperseg_perception"
SPEECH_NODE_NAME = "speech_command"


def _require_params_file(context):
    """A params_file that is not a file stops the launch (launch_ros would only warn and start the
    node with its built-in defaults)."""
    path = LaunchConfiguration("params_file").perform(context)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"params_file {path!r} is not a file")


class NameList(Substitution):
    """A comma-separated launch argument as a YAML list of strings ("front,wrist" -> ["front", "wrist"]).
    An empty one gives [], which leaves the params file's value in place."""

    def __init__(self, text: Substitution):
        super().__init__()
        self.text = text

    def perform(self, context) -> str:
        return json.dumps([name.strip() for name in self.text.perform(context).split(",") if name.strip()])


def generate_launch_description():
    share = get_package_share_directory("hyperseg_ros")
    arg = LaunchConfiguration
    arguments = [
        DeclareLaunchArgument(
            "namespace", default_value="",
            description="namespace of the node and of its relative topics (image, command, segmentation, ...)"),
        DeclareLaunchArgument(
            "params_file", default_value=os.path.join(share, "config", "perception.yaml"),
            description="YAML file with the node's parameters (the arguments below override it)"),
        DeclareLaunchArgument(
            "image_topic", default_value="image",
            description="camera topic to segment, sensor_msgs/Image (relative names are in the namespace)"),
        DeclareLaunchArgument(
            "compressed", default_value="false", choices=["true", "false"],
            description="true: subscribe to <image_topic>/compressed (sensor_msgs/CompressedImage, jpeg or "
                        "png, as image_transport names it) instead of the raw image_topic"),
        DeclareLaunchArgument(
            "command_topic", default_value="command",
            description="plain-text command topic, std_msgs/String (structured commands: segmentation_command)"),
        DeclareLaunchArgument(
            "model_path", default_value="",
            description="model directory (config.json, model.safetensors, tokenizer) or a released HyperSeg-3B "
                        "directory; empty = the embedded default model"),
        DeclareLaunchArgument(
            "device", default_value="auto",
            description="auto | cpu | cuda | cuda:N (auto = cuda when torch sees a GPU)"),
        DeclareLaunchArgument(
            "cameras", default_value="",
            description="comma-separated camera names served by one model, each a topic prefix in the namespace "
                        "(front,wrist: front/image, front/segmentation, wrist/image, ...); empty = the params "
                        "file's `cameras` (none: one camera on image_topic)"),
        DeclareLaunchArgument(
            "managed", default_value="false", choices=["false", "true", "external"],
            description="who drives the lifecycle: false = the node configures and activates itself; "
                        "true = it starts unconfigured and this launch file configures it, then activates it "
                        "once inactive; external = it starts unconfigured and waits for a lifecycle manager "
                        "(nav2_lifecycle_manager, ros2 lifecycle set)"),
        DeclareLaunchArgument(
            "speech", default_value="false", choices=["true", "false"],
            description="true: also start the speech node speech_command (AudioChunk on `audio` -> "
                        "sentences on command_topic, transcripts on speech/transcript)"),
        DeclareLaunchArgument(
            "speech_engine", default_value="grammar", choices=["grammar", "whisper"],
            description="the speech node's recogniser: grammar (embedded, the command language) or whisper "
                        "(a Whisper model from whisper_model_path)"),
        DeclareLaunchArgument(
            "whisper_model_path", default_value="",
            description="a local Whisper model directory with model.safetensors (speech_engine whisper)"),
        DeclareLaunchArgument(
            "audio_source", default_value="topic", choices=["topic", "microphone"],
            description="the speech node's audio: topic (AudioChunk on `audio`) or microphone"),
    ]
    # Large best-effort images need a bigger Fast DDS shared-memory segment (see README).
    fastdds_profile = SetEnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE",
        EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                            default_value=os.path.join(share, "config", "fastdds_shm.xml")))
    node = LifecycleNode(
        package="hyperseg_ros",
        executable="perception_node",
        name=NODE_NAME,
        namespace=arg("namespace"),
        parameters=[arg("params_file"), {
            "device": ParameterValue(arg("device"), value_type=str),
            "model_path": ParameterValue(arg("model_path"), value_type=str),
            "compressed_input": ParameterValue(arg("compressed"), value_type=bool),
            "autostart": ParameterValue(EqualsSubstitution(arg("managed"), "false"), value_type=bool),
            "cameras": ParameterValue(NameList(arg("cameras")), value_type=list[str]),
        }],
        remappings=[("image", arg("image_topic")),
                    ("image/compressed", [arg("image_topic"), "/compressed"]),
                    ("command", arg("command_topic"))],
        output="screen",
        emulate_tty=True,
        # On SIGINT (Ctrl-C) the node finishes the frame in inference, then frees the model: on a busy
        # CPU, or with a large model, that takes longer than launch's default 5 s before SIGTERM.
        sigterm_timeout="30",
    )
    speech = LifecycleNode(
        condition=IfCondition(arg("speech")),
        package="hyperseg_ros",
        executable="speech_command",
        name=SPEECH_NODE_NAME,
        namespace=arg("namespace"),
        parameters=[{
            "engine": ParameterValue(arg("speech_engine"), value_type=str),
            "whisper_model_path": ParameterValue(arg("whisper_model_path"), value_type=str),
            "audio_source": ParameterValue(arg("audio_source"), value_type=str),
            "autostart": ParameterValue(EqualsSubstitution(arg("managed"), "false"), value_type=bool),
        }],
        remappings=[("command", arg("command_topic"))],  # where the perception node listens
        output="screen",
        emulate_tty=True,
    )
    return LaunchDescription([*arguments, OpaqueFunction(function=_require_params_file), fastdds_profile, node,
                              speech, *_driven_by_launch(node, arg), *_driven_by_launch(speech, arg, arg("speech"))])


def _driven_by_launch(node, arg, started=None) -> list:
    """managed:=true: configure `node` at start, activate it once the configure transition has reached
    inactive (once: a later deactivate, e.g. `ros2 lifecycle set <node> deactivate`, is left alone).
    `started`: a launch argument that must also be true (the node is optional)."""
    drives = EqualsSubstitution(arg("managed"), "true")
    launch_drives = IfCondition(drives if started is None else AndSubstitution(drives, started))
    configure = EmitEvent(condition=launch_drives, event=ChangeState(
        lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE))
    activate_when_configured = RegisterEventHandler(condition=launch_drives, event_handler=OnStateTransition(
        target_lifecycle_node=node, start_state="configuring", goal_state="inactive", handle_once=True,
        entities=[EmitEvent(event=ChangeState(
            lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_ACTIVATE))]))
    return [activate_when_configured, configure]
