"""Loaded classifier: calibrated prediction and Grad-CAM from one forward pass.

``Classifier.load()`` rebuilds the active (or a named) registry version from its card. Confidence
is ``softmax(logits / T)`` with the card's temperature (Guo et al. 2017). ``explain`` runs the
gradient sub-model (input -> [last conv activations, logits]) once under a gradient tape and
returns both the prediction and the Grad-CAM map (Selvaraju et al. 2017) of the requested class,
or of the predicted class when none is given.

Test-time flip averaging: when the card's preprocessing has ``"tta": "hflip"``, the logits are
the mean of the scan's and its left-right mirror's (brain MRI has no preferred side for these
classes); the temperature of such a version is fitted on those averaged logits. Grad-CAM comes
from the unflipped image in the same batched forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.classifier.calibration import softmax
from core.classifier.gradcam import METHODS, cam_from_gradients, place_in_scan
from core.classifier.preprocess import HeadBox, preprocess
from core.errors import ModelCardError

__all__ = ["Prediction", "Classifier", "gradcam_layer_for", "SCRATCH_NOTICE", "TTA_MODES"]

TTA_MODES = (None, "hflip")

SCRATCH_NOTICE = "trained from scratch, no ImageNet weights"


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float                 # calibrated probability of ``label``
    probabilities: dict[str, float]   # calibrated, sums to 1
    class_index: int
    version: str


def gradcam_layer_for(card: dict) -> str:
    """The Grad-CAM target layer: the card's ``gradcam_layer``, else the architecture's constant."""
    if card.get("gradcam_layer"):
        return card["gradcam_layer"]
    arch = card.get("architecture")
    if arch == "vgg16":
        from core.models.vgg16 import GRADCAM_LAYER
    elif arch == "vgg16_bn":
        from core.models.vgg16 import GRADCAM_LAYER_BN as GRADCAM_LAYER
    elif arch == "cnn":
        from core.models.simple_cnn import GRADCAM_LAYER
    else:
        raise ModelCardError(f"No Grad-CAM layer known for architecture {arch!r}.")
    return GRADCAM_LAYER


class Classifier:
    """A registry model plus its card; safe to share between users (never mutated)."""

    def __init__(self, model, card: dict) -> None:
        import keras

        self.model, self.card = model, card
        self.classes: list[str] = list(card["classes"])
        self.version: str = card["version"]
        self.temperature = float((card.get("calibration") or {}).get("temperature", 1.0))
        if not self.temperature > 0:
            raise ModelCardError(f"Model card {self.version}: temperature must be > 0.")
        self.preprocessing: dict = dict(card["preprocessing"])
        self.preprocessing.setdefault("size", [card["input_size"]] * 2)
        self.tta: str | None = self.preprocessing.get("tta")
        if self.tta not in TTA_MODES:
            raise ModelCardError(f"Model card {self.version}: unknown preprocessing.tta "
                                 f"{self.tta!r}; expected one of {TTA_MODES}.")
        pre = card.get("pretrained")
        self.pretrained = bool(pre) if not isinstance(pre, str) else True
        self.notice: str | None = card.get("notice") or (None if self.pretrained else SCRATCH_NOTICE)
        self.gradcam_layer = gradcam_layer_for(card)
        try:
            target = model.get_layer(self.gradcam_layer).output
            logits = model.get_layer("logits").output
        except ValueError as err:
            raise ModelCardError(f"Model {self.version}: {err}") from None
        self._grad_model = keras.Model(model.input, [target, logits])
        self._logits_model = keras.Model(model.input, logits)
        self._explain_fn = None
        self._forward_fn = None

    @classmethod
    def load(cls, version: str | None = None, *, weights_dir: str | Path | None = None
             ) -> Classifier:
        """The active version (or ``version``); ``ModelNotFoundError`` if there is none."""
        from core import registry

        model, card = registry.load_model("classifier", version, weights_dir=weights_dir)
        return cls(model, card)

    # ---- inference -------------------------------------------------------------------------
    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, HeadBox]:
        """Scan pixels -> (model input (S, S, C), crop box): the card's preprocessing."""
        return preprocess(image, self.preprocessing)

    def _prediction(self, logits: np.ndarray) -> Prediction:
        p = softmax(logits[None], self.temperature)[0]
        i = int(np.argmax(p))
        return Prediction(self.classes[i], float(p[i]),
                          {c: float(v) for c, v in zip(self.classes, p)}, i, self.version)

    def _forward(self, x: np.ndarray):
        """Logits of a preprocessed batch; a compiled graph on TensorFlow (eager calls of a
        Keras model cost about twice as much on the CPU)."""
        import keras

        if keras.backend.backend() != "tensorflow":
            return self._logits_model(x, training=False)
        if self._forward_fn is None:
            import tensorflow as tf

            logits_model = self._logits_model
            self._forward_fn = tf.function(lambda t: logits_model(t, training=False),
                                           reduce_retracing=True)
        return self._forward_fn(np.asarray(x, np.float32))

    def logits_batch(self, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Preprocessed batch (N, S, S, C) -> logits (N, K) float64 (flip-averaged when the card
        asks for it)."""
        import keras

        def run(chunk: np.ndarray) -> np.ndarray:
            if self.tta != "hflip":
                return keras.ops.convert_to_numpy(self._forward(chunk)).astype(np.float64)
            both = keras.ops.convert_to_numpy(self._forward(
                np.concatenate([chunk, chunk[:, :, ::-1]]))).astype(np.float64)
            return (both[:len(chunk)] + both[len(chunk):]) / 2

        out = [run(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))

    def predict_proba(self, x: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """Preprocessed batch -> probabilities (N, K), temperature-scaled unless told not to."""
        return softmax(self.logits_batch(x), self.temperature if calibrated else 1.0)

    def predict(self, image: np.ndarray) -> Prediction:
        """One scan (float [0, 1] H×W or H×W×3) -> calibrated :class:`Prediction`."""
        x, _ = self.prepare(image)
        return self._prediction(self.logits_batch(x[None])[0])

    def _class_index(self, class_name: str | None) -> int:
        if class_name is None:
            return -1
        if class_name not in self.classes:
            raise ValueError(f"Unknown class {class_name!r}; this model knows {self.classes}.")
        return self.classes.index(class_name)

    def _explain_tf(self, x: np.ndarray, class_index: int):
        import tensorflow as tf

        if self._explain_fn is None:
            grad_model = self._grad_model

            @tf.function(reduce_retracing=True)
            def fn(x, idx):
                # x: the image, plus its mirror when flip-averaging; the class score (and so
                # the map) is the unflipped image's, the returned logits are the batch mean
                with tf.GradientTape() as tape:
                    acts, logits = grad_model(x, training=False)
                    acts = tf.cast(acts, tf.float32)
                    logits = tf.cast(logits, tf.float32)
                    mean = tf.reduce_mean(logits, axis=0)
                    target = tf.where(idx < 0, tf.argmax(mean, output_type=tf.int32), idx)
                    score = tf.gather(logits[0], target)
                grads = tape.gradient(score, acts)
                return acts[0], grads[0], mean

            self._explain_fn = fn
        batch = x[None] if self.tta != "hflip" else np.stack([x, x[:, ::-1]])
        acts, grads, logits = self._explain_fn(tf.convert_to_tensor(batch, tf.float32),
                                               tf.constant(class_index, tf.int32))
        return acts.numpy(), grads.numpy(), logits.numpy().astype(np.float64)

    def explain_cam(self, image: np.ndarray, class_name: str | None = None,
                    method: str = "gradcam") -> tuple[Prediction, np.ndarray, HeadBox]:
        """Like :meth:`explain` but returns the model-space map (h, w) and the crop box too."""
        import keras

        if method not in METHODS:
            raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")
        idx = self._class_index(class_name)
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError("Grad-CAM needs the TensorFlow back end (the app's).")
        x, box = self.prepare(image)
        acts, grads, logits = self._explain_tf(x, idx)
        return self._prediction(logits), cam_from_gradients(acts, grads, method), box

    def explain(self, image: np.ndarray, class_name: str | None = None, method: str = "gradcam"
                ) -> tuple[Prediction, np.ndarray]:
        """One forward pass -> (calibrated prediction, Grad-CAM map H×W of ``image`` in [0, 1])
        for ``class_name`` or, when None, the predicted class."""
        pred, cam, box = self.explain_cam(image, class_name, method)
        return pred, place_in_scan(cam, box, np.asarray(image).shape[:2])
