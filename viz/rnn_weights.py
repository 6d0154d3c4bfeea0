"""The user's own recurrent weights (the exam's numbers, not seeded or preset ones): read and checked.

A set of weights is a mapping from names to arrays, given as a ``.npz`` file (``np.savez("w.npz",
W_c=..., W_h=..., W_x=...)``), a ``.json`` file or a JSON literal holding one object of arrays
(``{"W_c": [[...]], ...}``), or from Python a dict of arrays or tensors. Relative paths resolve against
``base`` (a manifest's folder). The names and shapes each model needs:

    gated RNN           W_c (m, n), W_h (m, m), W_x (m, n)            (`viz.rnn.WEIGHT_NAMES`)
    AttentionRNN(k)     Q_i, K_i, V_i (n, n) for i = 0..k             (i = 0: the current input x[t])
    AttentionRNN(∞)     Q_0, K_0, V_0 and Q_1, K_1, V_1 (n, n)        (index 1 shared by every lag i >= 1,
                                                                       MATH.md section 4)

Every failure is an `ArrayError` whose one line names the parameter and the key:
``--weights: W_h: expected shape 3x3 for state size m = 3, got 3x2``,
``--weights: missing W_x (the gated RNN needs W_c, W_h, W_x)``.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from viz.arrays import ArrayError, load_array, shape_text
from viz.attention import weight_names as attention_weight_names

FORMS = ("a .npz file, a .json file or JSON object of arrays like {\"W_c\": [[1, 2]], ...}, "
         "or a dict of arrays")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def read_weights(raw, name: str = "weights", base: Path | str | None = None) -> dict[str, np.ndarray]:
    """{key: float64 array} from what the user gave (see the module docstring); ArrayError naming
    `name` (and the key) if it is not a readable, non-empty mapping of finite arrays."""
    flag = _flag(name)
    if isinstance(raw, tuple) and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in raw):
        raw = dict(raw)                      # the typed value of viz.app.params' WeightsParam
    if isinstance(raw, (str, Path)):
        raw = _read_text_or_file(str(raw).strip(), flag, base)
    if not isinstance(raw, dict) or not raw:
        what = "holds no arrays" if isinstance(raw, dict) else f"must be {FORMS}"
        raise ArrayError(name, f"{flag}: {what}")
    out = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ArrayError(name, f"{flag}: array names must be words like W_c (got {key!r})")
        if isinstance(value, (str, Path)):       # never a path inside the weights: one file holds them all
            raise ArrayError(name, f"{flag}: {key}: must be an array of numbers (got a string)")
        try:
            out[key] = load_array(value, name)
        except ArrayError as err:
            raise ArrayError(name, f"{flag}: {key}: {str(err).split(': ', 1)[-1]}") from None
    return out


def _read_text_or_file(text: str, flag: str, base) -> object:
    name = flag[2:].replace("-", "_")
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError as err:
            raise ArrayError(name, f"{flag}: not a JSON object ({getattr(err, 'msg', err)})") from None
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if not text or not path.is_file():
        raise ArrayError(name, f"{flag}: no such file {str(path)!r} (give {FORMS})")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        if suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
    except (zipfile.BadZipFile, EOFError) as err:
        raise ArrayError(name, f"{flag}: cannot read {str(path)!r}: not a .npz archive ({err})") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ArrayError(name, f"{flag}: cannot read {str(path)!r}: {' '.join(str(err).split())}") from None
    raise ArrayError(name, f"{flag}: {str(path)!r} must be a .npz or .json file")


def gated_shapes(n: int, m: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """{key: (shape, "for ...")} of the gated RNN's weights."""
    both = f"state size m = {m} and input size n = {n}"
    return {"W_c": ((m, n), both), "W_h": ((m, m), f"state size m = {m}"), "W_x": ((m, n), both)}


def attention_shapes(n: int, k: int | None) -> dict[str, tuple[tuple[int, ...], str]]:
    """{key: (shape, "for ...")} of AttentionRNN(k)'s weights (k None: ∞)."""
    return {key: ((n, n), f"state size n = {n}") for key in attention_weight_names(k)}


def check_weights(weights: dict, shapes: dict, model: str, name: str = "weights") -> dict[str, np.ndarray]:
    """`weights` if it holds exactly the keys of `shapes` (in that order), each of its shape; else
    ArrayError: missing keys, then unexpected ones, then the first wrong shape."""
    flag, needed = _flag(name), ", ".join(_compact(list(shapes)))
    missing = [key for key in shapes if key not in weights]
    if missing:
        raise ArrayError(name, f"{flag}: missing {', '.join(missing)} ({model} needs {needed}; "
                               f"got {', '.join(_compact(list(weights)))})")
    extra = [key for key in weights if key not in shapes]
    if extra:
        raise ArrayError(name, f"{flag}: unexpected {', '.join(extra)} ({model} takes {needed} only)")
    for key, (shape, why) in shapes.items():
        got = np.shape(weights[key])
        if tuple(got) != tuple(shape):
            raise ArrayError(name, f"{flag}: {key}: expected shape {shape_text(shape)} for {why}, "
                                   f"got {shape_text(got)}")
    return {key: np.asarray(weights[key], dtype=float) for key in shapes}


def fitting_options(weights: dict, model: str) -> str:
    """The options these weights fit, when their names and shapes agree with each other: "--m 2 --n 3"
    (the gated RNN), "--n 3 --k 2" (AttentionRNN; k = 1 and ∞ take the same six arrays); "" otherwise."""
    shapes = {key: np.shape(v) for key, v in weights.items()}
    if model == "gated":
        if set(shapes) != set(gated_shapes(1, 1)) or len(shapes["W_c"]) != 2:
            return ""
        m, n = shapes["W_c"]
        return f"--m {m} --n {n}" if shapes == {k: s for k, (s, _) in gated_shapes(n, m).items()} else ""
    first = shapes.get("Q_0", ())
    if len(first) != 2 or any(s != first for s in shapes.values()):
        return ""
    spans = [k for k in (*range(1, 65), None) if set(attention_weight_names(k)) == set(shapes)]
    words = " or ".join("--k " + ("inf" if k is None else str(k)) for k in spans)
    return f"--n {first[0]} {words}" if spans else ""


def _compact(keys: list[str]) -> list[str]:
    """Q_0, Q_1, Q_2, K_0, ... as "Q_0..Q_2, K_0..K_2, ..." once there are more than three per letter."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split("_")[0], []).append(key)
    if all(len(g) <= 3 for g in groups.values()):
        return keys
    return [f"{g[0]}..{g[-1]}" for g in groups.values()]


def model_words(model: str, k: int | None = None) -> str:
    """How messages name the model whose weights they check."""
    if model == "gated":
        return "the gated RNN"
    return f"AttentionRNN({'∞' if k is None else k})"


def shapes_for(model: str, n: int, m: int, k: int | None) -> dict[str, tuple[tuple[int, ...], str]]:
    return gated_shapes(n, m) if model == "gated" else attention_shapes(n, k)
