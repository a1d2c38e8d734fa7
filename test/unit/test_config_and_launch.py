"""config/perception.yaml, the launch file and the node agree on every parameter.

launch / launch_ros have no PyPI wheels, so the launch file is checked statically here (ast);
the dynamic check only runs where a system ROS 2 provides them.
"""
import ast
import re
from pathlib import Path

import pytest
import yaml

from hyperseg_ros.parameters import PARAMETERS
from hyperseg_ros.perception_node import NODE_NAME

ROOT = Path(__file__).resolve().parents[2]
YAML = ROOT / "config" / "perception.yaml"
LAUNCH = ROOT / "launch" / "perception.launch.py"


def _yaml_parameters() -> dict:
    return yaml.safe_load(YAML.read_text())["/**"]["ros__parameters"]


def test_yaml_sets_every_node_parameter_to_its_default():
    params = _yaml_parameters()
    unset = {name for name, param in PARAMETERS.items() if param.default is None}
    assert set(params) == set(PARAMETERS) - unset
    for name, value in params.items():
        default = PARAMETERS[name].default
        assert value == default, name
        assert type(value) is type(default), name  # ROS parameters are typed
    for name in unset:  # not set by default; the yaml shows how to set it
        assert re.search(rf"^\s{{4}}# {name}: ", YAML.read_text(), flags=re.M), name


def test_every_yaml_parameter_has_a_comment_above_it():
    lines = YAML.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s{4}\w+:", line):
            assert lines[i - 1].strip().startswith("#"), f"undocumented: {line.strip()}"


def _launch_calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def _node_calls(tree) -> list[dict]:
    """The keyword arguments of each LifecycleNode(...) in the launch file."""
    return [{k.arg: k.value for k in call.keywords} for call in _launch_calls(tree, "LifecycleNode")]


def test_launch_arguments_have_descriptions_and_parameters_exist():
    tree = ast.parse(LAUNCH.read_text())
    declared = {}
    for call in _launch_calls(tree, "DeclareLaunchArgument"):
        kwargs = {k.arg: k.value for k in call.keywords}
        assert isinstance(kwargs.get("description"), ast.Constant) and kwargs["description"].value.strip()
        declared[call.args[0].value] = kwargs
    assert {"params_file", "namespace", "image_topic", "command_topic", "device", "model_path"} <= set(declared)
    # LaunchConfiguration is also called through a short alias, `arg`
    used = {c.args[0].value for name in ("LaunchConfiguration", "arg") for c in _launch_calls(tree, name)}
    assert used <= set(declared), f"undeclared launch arguments: {used - set(declared)}"

    (kwargs,) = [k for k in _node_calls(tree) if k["executable"].value == "perception_node"]
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                 for t in n.targets if isinstance(t, ast.Name)}
    name = kwargs["name"].value if isinstance(kwargs["name"], ast.Constant) else constants[kwargs["name"].id]
    assert kwargs["executable"].value == "perception_node" and name == NODE_NAME
    overrides = [d for d in kwargs["parameters"].elts if isinstance(d, ast.Dict)]
    set_by_launch = {k.value for d in overrides for k in d.keys}
    assert set_by_launch and set_by_launch <= set(PARAMETERS)
    shown = set(_yaml_parameters()) | set(re.findall(r"^\s{4}# (\w+): ", YAML.read_text(), flags=re.M))
    assert set_by_launch <= shown  # set in the params file, or (unset by default) shown there in a comment
    remapped = {t.elts[0].value for t in kwargs["remappings"].elts}
    assert remapped == {"image", "image/compressed", "command"}


def test_launch_starts_the_speech_node_on_the_command_topic_only_when_asked():
    from hyperseg_ros.speech_node import NODE_NAME as SPEECH_NODE_NAME
    from hyperseg_ros.speech_node import PARAMETERS as SPEECH_PARAMETERS

    tree = ast.parse(LAUNCH.read_text())
    defaults = {c.args[0].value: ast.unparse({k.arg: k.value for k in c.keywords}["default_value"])
                for c in _launch_calls(tree, "DeclareLaunchArgument")}
    assert (defaults["speech"], defaults["speech_engine"]) == ("'false'", "'grammar'")
    (kwargs,) = [k for k in _node_calls(tree) if k["executable"].value == "speech_command"]
    assert ast.unparse(kwargs["condition"]) == "IfCondition(arg('speech'))"
    assert SPEECH_NODE_NAME in LAUNCH.read_text() and ast.unparse(kwargs["namespace"]) == "arg('namespace')"
    (params,) = kwargs["parameters"].elts  # its own parameters: the perception params file is not for it
    assert {k.value for k in params.keys} == {"engine", "whisper_model_path", "audio_source", "autostart"}
    assert {k.value for k in params.keys} <= set(SPEECH_PARAMETERS)
    assert [ast.unparse(r) for r in kwargs["remappings"].elts] == ["('command', arg('command_topic'))"]


def test_launch_sets_the_fast_dds_profile_and_the_package_installs_what_it_uses():
    text = LAUNCH.read_text()
    assert "FASTDDS_DEFAULT_PROFILES_FILE" in text and "fastdds_shm.xml" in text
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"install\(DIRECTORY launch config", cmake)
    # the executables are setup.py's console scripts, installed where `ros2 run` and a venv look
    assert "setup.py -q egg_info" in cmake and "install_scripts" in cmake
    assert "DESTINATION lib/${PROJECT_NAME}" in cmake and "DESTINATION bin" in cmake
    setup_py = (ROOT / "setup.py").read_text()
    for entry in ("perception_node = hyperseg_ros.perception_node:main", "hyperseg_bag = hyperseg_ros.bag:main",
                  "hyperseg_command = hyperseg_ros.command_client:main"):
        assert entry in setup_py
    assert (ROOT / "config" / "fastdds_shm.xml").is_file()


def test_launch_description_builds_when_launch_ros_is_installed(monkeypatch):
    pytest.importorskip("launch_ros", reason="launch_ros has no PyPI wheel; checked statically above")
    import importlib.util
    import sys

    # the package's share directory is installed into the venv (make setup), the ament prefix here
    monkeypatch.setenv("AMENT_PREFIX_PATH", sys.prefix)
    spec = importlib.util.spec_from_file_location("perception_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert len(description.entities) >= 8


def _launched_nodes(monkeypatch, **arguments) -> dict:
    """{executable: node action after substitution} of the launch file under `arguments`, for the
    nodes whose condition holds; each with `.parameters`, the dict of its parameter files."""
    pytest.importorskip("launch_ros", reason="launch_ros has no PyPI wheel; checked statically above")
    import importlib.util
    import sys

    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import LifecycleNode

    from launch import LaunchContext

    monkeypatch.setenv("AMENT_PREFIX_PATH", sys.prefix)
    spec = importlib.util.spec_from_file_location("perception_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = LaunchContext()
    context.launch_configurations.update({k: str(v) for k, v in arguments.items()})
    nodes = {}
    for entity in module.generate_launch_description().entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.execute(context)  # the defaults of the arguments not given
        elif isinstance(entity, LifecycleNode) and (entity.condition is None or entity.condition.evaluate(context)):
            entity._perform_substitutions(context)  # what launch does before it starts the process
            words = [getattr(c[0], "text", None) for c in entity.cmd]
            entity.parameters = {}
            for path in (words[i + 1] for i, w in enumerate(words) if w == "--params-file"):
                for value in yaml.safe_load(Path(path).read_text()).values():
                    entity.parameters.update(value["ros__parameters"])
            nodes[entity.node_executable] = entity
    return nodes


def test_launch_description_has_the_speech_node_only_with_speech_true(monkeypatch, tmp_path):
    assert set(_launched_nodes(monkeypatch)) == {"perception_node"}
    nodes = _launched_nodes(monkeypatch, speech="true", namespace="robot", command_topic="/speech/text",
                            speech_engine="whisper", whisper_model_path=tmp_path, managed="true")
    speech, perception = nodes["speech_command"], nodes["perception_node"]
    assert speech.node_name == "/robot/speech_command" and perception.node_name == "/robot/hyperseg_perception"
    assert speech.expanded_remapping_rules == [("command", "/speech/text")]
    assert ("command", "/speech/text") in perception.expanded_remapping_rules
    assert speech.parameters == {"engine": "whisper", "whisper_model_path": str(tmp_path), "audio_source": "topic",
                                 "autostart": False}


def test_reference_documents_every_parameter_and_readme_opens_with_demo_and_test():
    reference = (ROOT / "docs" / "REFERENCE.md").read_text()
    table = {m.group(1) for m in re.finditer(r"^\| `(\w+)` \|", reference, flags=re.M)}
    assert set(PARAMETERS) <= table, f"undocumented parameters: {set(PARAMETERS) - table}"
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"^```bash[^\n]*\n(.*?)^```", readme, flags=re.M | re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]
    lines = readme.splitlines()
    assert len(lines) <= 250 and any("](docs/demo_strip.png)" in line for line in lines[:30])
    assert (ROOT / "docs" / "demo_strip.png").stat().st_size < 1_000_000
