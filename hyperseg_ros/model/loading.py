"""What a model directory must hold, checked before anything is built or served.

A model that loads with missing or mis-shaped weights answers with random tensors and looks
healthy; a config.json without sizes would build the 3B model before failing. So: config.json is
parsed and its fields and types checked before any module is built; weights are read from
safetensors only (a pickle is never opened); the sizes config.json claims are checked against the
shapes in the weights' own headers before anything is allocated (a config claiming a million-word
vocabulary would otherwise allocate gigabytes first); and transformers' loading report must show
every weight the config needs present with its shape, and none left over. The directory holds
regular files (and folders) only: a FIFO or a device would block a read or never end one. Every
JSON file and safetensors header is parsed in one native call that holds the interpreter (a stop
signal waits for its end), so their sizes are bounded to keep that call short. Every error names
the file.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import struct
from pathlib import Path

import torch

from .config import _SIZES, HyperSegConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
# missing: embedding_rows = the LLM vocabulary size; category_prompts = the release layout;
# score_thresholds = 0.5 for every task; mask_shape_size, name_scorer_hidden = no mask-shape encoder, no name
# scorer (the release)
OPTIONAL_FIELDS = ("embedding_rows", "category_prompts", "score_thresholds", "mask_shape_size", "name_scorer_hidden")
MAX_SIZE_RATIO = 2  # config.json may ask for at most this many times the values the weights hold
# A JSON or text file of a model directory is parsed whole in one native call (json, tokenizers): 8 MiB
# take about 0.5 s on a busy core, so SIGTERM still ends a configure within 2 s. Phi-2's tokenizer.json is 2 MB.
MAX_TEXT_BYTES = 8 * 2**20
MAX_HEADER_BYTES = 8 * 2**20  # a safetensors header, parsed likewise (the shipped model: 55 KB for 441 tensors)


class ModelFileError(ValueError):
    """A model directory that cannot be served; the message names the file (and key)."""


def _kind(mode: int) -> str:
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def _unreadable(path: Path, err: OSError) -> ModelFileError:
    what = "a symlink loop" if err.errno == errno.ELOOP else f"cannot be read ({err.strerror})"
    return ModelFileError(f"{path}: {what}")


def check_directory(directory: Path) -> None:
    """ModelFileError naming the entry unless every entry of `directory` is, after its links, a
    regular file or a folder, and every JSON or text file is at most MAX_TEXT_BYTES (read whole);
    the shards of an index must be plain file names of entries (see check_shard_name)."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        raise FileNotFoundError(f"{directory}: missing (no HyperSeg model there)") from None
    except OSError as err:
        raise _unreadable(directory, err) from None
    index = directory / WEIGHTS_INDEX
    if index.exists():  # first: an entry of the index is named as such
        for name in sorted(set(read_weight_map(index).values())):
            check_shard_name(directory, name, index)
    for entry in entries:
        path = Path(entry.path)
        try:
            info = os.stat(path)  # a link (a hub cache's snapshot) counts as what it points to
        except FileNotFoundError:
            raise ModelFileError(f"{path}: a link to nothing") from None
        except OSError as err:
            raise _unreadable(path, err) from None
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            raise ModelFileError(f"{path}: {_kind(info.st_mode)}, not a regular file "
                                 "(a model directory holds regular files and folders only)")
        if path.suffix in (".json", ".txt", ".jinja") and info.st_size > MAX_TEXT_BYTES:
            raise ModelFileError(f"{path}: {info.st_size} bytes, over the {MAX_TEXT_BYTES} a model file may have")
        if path.suffix == ".safetensors" and stat.S_ISREG(info.st_mode):
            check_header_size(path)


def check_header_size(path: Path) -> None:
    """ModelFileError naming `path` when its safetensors header is over MAX_HEADER_BYTES (the first
    8 bytes give its length; nothing else is read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise _unreadable(path, err) from None
    with os.fdopen(fd, "rb") as file:
        head = file.read(8)
    size = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
    if size > MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: a safetensors header of {size} bytes, over the {MAX_HEADER_BYTES} "
                             "a model file may have")


def read_model_file(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_TEXT_BYTES, checked on the open file itself
    (opened without blocking: a FIFO put there after check_directory does not hang the read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (no HyperSeg model at {path.parent})") from None
    except OSError as err:
        raise _unreadable(path, err) from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(f"{path}: {_kind(info.st_mode)}, not a regular file")
        if info.st_size > MAX_TEXT_BYTES:
            raise ModelFileError(f"{path}: {info.st_size} bytes, over the {MAX_TEXT_BYTES} a model file may have")
        return file.read(MAX_TEXT_BYTES + 1)


def read_json(path: Path):
    """A model directory's JSON file, parsed; ModelFileError naming it when it is not JSON (or is
    nested too deep for the parser)."""
    try:
        return json.loads(read_model_file(path))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFileError(f"{path}: not valid JSON ({type(err).__name__}: {str(err)[:200]})") from None


def read_config_json(directory: Path) -> dict:
    """config.json of `directory` as a dict; FileNotFoundError when missing, ModelFileError when it
    is not a JSON object."""
    path = directory / CONFIG_FILE
    data = read_json(path)
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _type_error(where: str, expected, value) -> str | None:
    """Why `value` does not have the type of the reference value `expected` (None if it does)."""
    if isinstance(expected, bool):
        ok = isinstance(value, bool)
    elif isinstance(expected, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(expected, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(expected, list):
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    else:
        ok = isinstance(value, type(expected))
    return None if ok else f"{where} must be {type(expected).__name__}, got {json.dumps(value)[:60]}"


def validate_config(data: dict, path: Path) -> HyperSegConfig:
    """HyperSegConfig from config.json's dict, after checking that every size the model is built
    from is present with its type (the fields of the `tiny` size, which has them all)."""
    problems = []
    for field, reference in _SIZES["tiny"].items():
        if field not in data or data[field] is None:
            if field not in OPTIONAL_FIELDS:
                problems.append(f"missing field {field!r}")
            continue
        value = data[field]
        if isinstance(reference, dict):
            if not isinstance(value, dict):
                problems.append(f"{field} must be an object")
                continue
            for key, sub_reference in reference.items():
                if key not in value:
                    problems.append(f"missing field {field}.{key}")
                else:
                    problems.append(_type_error(f"{field}.{key}", sub_reference, value[key]))
        else:
            problems.append(_type_error(field, reference, value))
    problems = [p for p in problems if p]
    if problems:
        raise ModelFileError(f"{path}: {'; '.join(problems[:8])}"
                             + (f" ... ({len(problems)} problems)" if len(problems) > 8 else ""))
    try:
        return HyperSegConfig.from_dict(data)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: {err}") from None


def safetensors_files(directory: Path) -> tuple[list[Path], dict[str, tuple[int, ...]]]:
    """The safetensors file(s) of `directory`, each with a readable header, and the shape of every
    weight their headers list; ModelFileError if there is none (a pickle such as pytorch_model.bin
    is never a fallback) or one is unreadable.

    Sharded weights (model.safetensors.index.json + shards, as `save_pretrained(max_shard_size=...)`
    writes them) are read strictly: every shard is a plain file name of a regular file inside the
    directory (no path, no "..", no FIFO or device), and the keys of each shard are
    exactly those the index maps to it (no key missing, none unlisted, none in two shards)."""
    from safetensors import SafetensorError, safe_open

    index = directory / WEIGHTS_INDEX
    weight_map = None
    if index.is_file() and (directory / WEIGHTS_FILE).exists():  # transformers would read the single file
        raise ModelFileError(f"{directory}: both {WEIGHTS_FILE} and {WEIGHTS_INDEX}; keep one")
    if index.is_file():
        weight_map = read_weight_map(index)
        names = sorted(set(weight_map.values()))
        for name in names:
            check_shard_name(directory, name, index)
    elif (directory / WEIGHTS_FILE).is_file():
        names = [WEIGHTS_FILE]
    else:
        pickles = sorted(p.name for p in directory.glob("*.bin")) + sorted(p.name for p in directory.glob("*.pt*"))
        raise ModelFileError(f"{directory / WEIGHTS_FILE}: missing; weights are read from safetensors only"
                             + (f" ({', '.join(pickles)} is not loaded: it is a pickle)" if pickles else ""))
    seen: dict[str, str] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name in names:
        try:
            with safe_open(directory / name, framework="pt") as f:
                keys = list(f.keys())
                shapes.update((key, tuple(f.get_slice(key).get_shape())) for key in keys)
        except (OSError, SafetensorError) as err:
            raise ModelFileError(f"{directory / name}: not a readable safetensors file ({err})") from None
        if weight_map is None:
            continue
        listed = {k for k, v in weight_map.items() if v == name}
        twice = sorted(f"{k} (also in {seen[k]})" for k in keys if k in seen)
        unlisted = sorted(set(keys) - listed)
        absent = sorted(listed - set(keys))
        problems = [f"{label} {_first(found)}" for label, found in (
            ("weights in two shards", twice), (f"weights {WEIGHTS_INDEX} does not map here", unlisted),
            (f"weights {WEIGHTS_INDEX} maps here but the shard lacks", absent)) if found]
        if problems:
            raise ModelFileError(f"{directory / name}: {'; '.join(problems)}")
        seen.update(dict.fromkeys(keys, name))
    return [directory / name for name in names], shapes


def read_weight_map(index: Path) -> dict[str, str]:
    """The `weight_map` (weight name -> shard file name) of a safetensors index; ModelFileError when
    the file is not such an index."""
    data = read_json(index)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if (not isinstance(weight_map, dict) or not weight_map
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items())):
        raise ModelFileError(f"{index}: not a safetensors index (weight_map must map weight names to file names)")
    return weight_map


def check_shard_name(directory: Path, name: str, index: Path) -> None:
    """ModelFileError naming the index entry unless `name` is a plain file name (no directory part,
    not "." or "..", not absolute) of a regular file directly inside `directory`."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
            or Path(name).is_absolute() or Path(name).name != name):
        raise ModelFileError(f"{index}: shard entry {name!r} is not a plain file name inside {directory}")
    path = directory / name
    try:
        mode = os.stat(path).st_mode  # a link (a hub cache's snapshot) counts as what it points to
    except FileNotFoundError:
        raise ModelFileError(f"{index}: shard entry {name!r}: {path} is missing") from None
    except OSError as err:
        raise ModelFileError(f"{index}: shard entry {name!r}: {_unreadable(path, err)}") from None
    if not stat.S_ISREG(mode):
        raise ModelFileError(f"{index}: shard entry {name!r}: {path} is {_kind(mode)}, not a regular file")


def check_sizes(config: HyperSegConfig, stored: dict[str, tuple[int, ...]], files: str) -> None:
    """ModelFileError naming `files` when config.json asks for far more than the weights hold: more
    layers than stored tensors (each layer has weights), or over MAX_SIZE_RATIO times the values
    stored. Counted on the meta device (no memory), so nothing is allocated for a size the weights
    do not have; a smaller difference (a missing or mis-shaped weight) is left to transformers'
    loading report, which names the keys (it renames some checkpoint keys, so names are not
    compared here)."""
    import math

    import torch

    from .hyperseg import HyperSeg

    layers = [(f"{sub}.{key}", sum(v) if isinstance(v, list) else v)
              for sub, sizes in config.to_dict().items() if isinstance(sizes, dict)
              for key, v in sizes.items() if str(key).endswith("layers") or key == "depths"]
    over = [f"{name} {n}" for name, n in layers if isinstance(n, int) and n > len(stored)]
    if over:
        raise ModelFileError(f"{files}: config.json claims more layers than the weights hold "
                             f"({len(stored)} tensors): {_first(over)}")
    with torch.device("meta"):
        needed_shapes = [(k, v.shape) for k, v in HyperSeg(config).state_dict().items()]
    needed: dict[str, int] = {}
    held: dict[str, int] = {}
    for totals, shapes in ((needed, needed_shapes), (held, stored.items())):
        for key, shape in shapes:
            totals[key.split(".")[0]] = totals.get(key.split(".")[0], 0) + math.prod(shape)
    if sum(needed.values()) > MAX_SIZE_RATIO * sum(held.values()):
        over = _fields_over(config, dict(needed_shapes), stored) or [
            f"{module} {n:,} (the weights hold {held.get(module, 0):,})" for module, n in needed.items()
            if n > held.get(module, 0)]
        raise ModelFileError(f"{files}: config.json asks for {sum(needed.values()):,} values, the weights hold "
                             f"{sum(held.values()):,}: a size in config.json is larger than the weights'; "
                             f"{_first(over)}")


def _fields_over(config: HyperSegConfig, needed: dict, stored: dict[str, tuple[int, ...]]) -> list[str]:
    """The config.json fields whose value is a dimension a weight needs larger than its header holds,
    e.g. 'llm_config.vocab_size 1000000 (llm.lm_head.weight holds 190)'."""
    fields = [(f"{sub}.{key}", v) for sub, sizes in config.to_dict().items() if isinstance(sizes, dict)
              for key, v in sizes.items()]
    fields += list(config.to_dict().items())
    fields = [(name, v) for name, v in fields if isinstance(v, int) and not isinstance(v, bool)]
    found: dict[str, str] = {}
    for key, shape in needed.items():
        held = stored.get(key)
        if held is None or len(held) != len(shape):
            continue
        for want, have in zip(shape, held):
            for name, value in fields:
                if want > have and value == want:
                    found.setdefault(name, f"{name} {value} ({key} holds {have})")
    return list(found.values())


def check_loading_info(info: dict, files: str) -> None:
    """ModelFileError naming `files` and the first keys when transformers' loading report (the
    `output_loading_info` of from_pretrained) has any weight missing, unexpected or mis-shaped."""
    def describe(key) -> str:  # mismatched keys come as (name, stored shape, needed shape)
        if isinstance(key, str):
            return key
        name, stored, needed = key
        return f"{name} {list(stored)} (config.json needs {list(needed)})"

    problems = [(label, sorted(describe(k) for k in info.get(key) or ()))
                for key, label in (("missing_keys", "missing weights"), ("mismatched_keys", "mis-shaped weights"),
                                   ("unexpected_keys", "weights config.json has no place for"))]
    problems = [f"{label} {_first(keys)}" for label, keys in problems if keys]
    if problems:
        raise ModelFileError(f"{files}: {'; '.join(problems)}")


def load_checked(directory: Path, dtype: torch.dtype):
    """(HyperSeg, tokenizer) of a model directory that passed check_directory, checked as the
    module docstring says."""
    model, tokenizer, _ = load_lacking(directory, dtype)
    return model, tokenizer


def load_lacking(directory: Path, dtype: torch.dtype, may_lack: tuple[str, ...] = ()):
    """load_checked, except that weights whose names start with `may_lack` may be missing or mis-shaped (a
    module added or reshaped since the weights were trained: training starts it fresh) -> (model, tokenizer, their names).
    Those weights hold whatever memory they were given (transformers leaves them to `_init_weights`,
    which HyperSeg does not use): copy only the others into a model built by its constructor."""
    from .hyperseg import HyperSeg
    from .tokenizer import load_tokenizer

    config = validate_config(read_config_json(directory), directory / CONFIG_FILE)
    tokenizer = load_tokenizer(str(directory))  # cheap, and its errors name the directory
    paths, stored = safetensors_files(directory)
    files = ", ".join(str(path) for path in paths)
    check_sizes(config, stored, files)  # before from_pretrained allocates what config.json claims
    try:
        model, info = HyperSeg.from_pretrained(str(directory), config=config, dtype=dtype, local_files_only=True,
                                               use_safetensors=True, output_loading_info=True,
                                               ignore_mismatched_sizes=True)  # reported below, with names
    except (OSError, RuntimeError, ValueError) as err:
        raise ModelFileError(f"{files}: {type(err).__name__}: {err}") from None
    # a module added, or reshaped, since the weights were trained: what it lacks (or holds mis-shaped) starts fresh
    mismatched = [k for k in info.get("mismatched_keys") or () if may_lack and k[0].startswith(may_lack)]
    lacking = sorted(k for k in info.get("missing_keys") or () if k.startswith(may_lack)) if may_lack else []
    lacking = sorted(lacking + [k[0] for k in mismatched])
    info = {**info, "missing_keys": [k for k in info.get("missing_keys") or () if k not in lacking],
            "mismatched_keys": [k for k in info.get("mismatched_keys") or () if k not in mismatched]}
    check_loading_info(info, files)  # transformers would serve random tensors in place of missing ones
    return model, tokenizer, lacking


def _first(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" ... ({len(items)} in all)" if len(items) > n else "")
