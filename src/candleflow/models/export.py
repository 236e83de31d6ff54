"""Models for serving: StableHLO via `jax.export` on the JAX backend (no TensorFlow needed), or
Keras' own exporters (TF SavedModel, ONNX, OpenVINO) where their packages are installed."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from candleflow.errors import DataError, RegistryError
from candleflow.fs.atomic import atomic_dir, write_bytes, write_json
from candleflow.models.backend import keras

KERAS_FORMATS = {"tf_saved_model": "tensorflow", "onnx": "onnx", "openvino": "openvino"}
FORMATS = ("stablehlo", *KERAS_FORMATS)


def export_model(
    model,
    out_dir: str | Path,
    fmt: str = "stablehlo",
    metadata: dict[str, Any] | None = None,
    include: Sequence[Path] = (),
) -> Path:
    """Write `model` for serving into `out_dir` (created atomically) with a `serving.json` that
    names the format, input shape and dtype, outputs and how to call it. `include`: files copied
    in beside it (a run's config, metadata and model file make the folder a serving bundle that
    `candleflow predict` reads). `fmt: native` exports nothing beyond them (LightGBM, linear)."""
    if fmt not in (*FORMATS, "native"):
        raise DataError(f"export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    k = keras
    backend = k.backend.backend()
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; choose another --out")
    info: dict[str, Any] = {"format": fmt}
    if fmt != "native":
        names, shapes = _inputs(model)
        info |= {
            "input_shape": [None, *shapes[0][1:]] if len(shapes) == 1 else [[None, *s[1:]] for s in shapes],
            **({"input_names": names} if len(names) > 1 else {}),
            "input_dtype": "float32",
            "output_shape": [None, *model.output_shape[1:]],
            "backend": backend,
            "keras": k.__version__,
        }
    info |= metadata or {}
    with atomic_dir(out_dir) as tmp:
        for path in include:
            shutil.copyfile(path, tmp / Path(path).name)
        if fmt == "native":
            pass
        elif fmt == "stablehlo":
            if backend != "jax":
                raise RegistryError(f"export format stablehlo needs the JAX backend (KERAS_BACKEND is {backend})")
            write_bytes(tmp / "model.stablehlo", stablehlo_bytes(model))
            info["call"] = (
                "jax.export.deserialize(bytearray(open('model.stablehlo', 'rb').read())).call(x) "
                "with x float32 of input_shape (any batch size)"
            )
        else:
            _require(fmt)
            model.export(str(tmp / "model"), format=fmt, verbose=False)
        write_json(tmp / "serving.json", info)
    return out_dir


def stablehlo_bytes(model) -> bytes:
    """The inference function with the weights as constants, exported with a symbolic batch size."""
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    names, shapes = _inputs(model)

    def infer(*xs):
        y, _ = model.stateless_call(trainable, fixed, xs[0] if len(xs) == 1 else dict(zip(names, xs)), training=False)
        return y

    scope = jax.export.SymbolicScope()  # one batch size shared by every input
    specs = [
        jax.ShapeDtypeStruct(
            jax.export.symbolic_shape(", ".join(["batch", *(str(d) for d in s[1:])]), scope=scope), jnp.float32
        )
        for s in shapes
    ]
    return bytes(jax.export.export(jax.jit(infer))(*specs).serialize())


def _inputs(model) -> tuple[list[str], list[tuple]]:
    """Each input's name and shape (batch first), in the order the exported function takes them:
    one for most models, three for the reward model (serving.json lists their names)."""
    inputs = list(model.inputs)
    return [str(i.name) for i in inputs], [tuple(i.shape) for i in inputs]


def load_stablehlo(path: str | Path):
    """A callable (numpy float32 batch -> numpy outputs) from an exported model.stablehlo."""
    import jax

    exported = jax.export.deserialize(bytearray(Path(path).read_bytes()))
    return lambda *xs: np.asarray(exported.call(*(np.asarray(x, dtype=np.float32) for x in xs)))


def _require(fmt: str) -> None:
    import importlib.util

    package = KERAS_FORMATS[fmt]
    needed = [package] + (["tensorflow"] if fmt == "onnx" and keras.backend.backend() == "jax" else [])
    missing = [p for p in needed if importlib.util.find_spec(p) is None]
    if missing:
        raise RegistryError(
            f"export format {fmt} needs {' and '.join(missing)}: pip install {' '.join(missing)} "
            f"(or use --format stablehlo on the JAX backend)"
        )
