"""The final ensemble as ONE servable Keras model built from standard layers only.

    image (raw pixels 0..255) -> Rescaling(1/255) -> member_i -> Rescaling(w_i) -> Add
                                                                     -> Softmax -> probabilities

A subnetwork that the safety net re-added appears once, with its weights summed.  The
``.keras`` file loads with plain ``keras.saving.load_model`` and the SavedModel with
``tf.saved_model.load`` (TF Serving's format), neither needing this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"


def build_servable(
    members: Sequence[Any], weights: Sequence[float], input_shape: tuple[int, ...]
) -> Any:
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale_to_unit")(inputs)
    outs = []
    for i, (member, weight) in enumerate(zip(members, weights, strict=True)):
        wrapped = keras.Model(member.inputs, member.outputs[0], name=f"member_{i}")
        outs.append(keras.layers.Rescaling(float(weight), name=f"mixture_weight_{i}")(wrapped(x)))
    logits = outs[0] if len(outs) == 1 else keras.layers.Add(name="ensemble_logits")(outs)
    probs = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, probs, name="rachel_ensemble")


def save_servable(model: Any, folder: str | Path) -> dict[str, str]:
    """Write ``model.keras`` (any backend) and, on the TensorFlow backend, ``saved_model/``.

    The SavedModel export traces the model with TensorFlow, so under ``KERAS_BACKEND=jax``
    or ``torch`` (a GPU node without a TensorFlow build) only the ``.keras`` file is written;
    it loads on any backend, and a TensorFlow machine can export it later.
    """
    import keras

    folder = Path(folder)
    model.save(folder / KERAS_FILE)
    written = {"keras": KERAS_FILE}
    if keras.backend.backend() == "tensorflow":
        model.export(str(folder / SAVED_MODEL_DIR), format="tf_saved_model", verbose=False)
        written["saved_model"] = SAVED_MODEL_DIR
    return written
