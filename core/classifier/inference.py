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

Out-of-distribution check (:mod:`core.classifier.ood`): the same forward pass also returns the
spatially averaged activations of the feature layers (every block's pooling output and the
penultimate features); when the card has an ``ood`` section, their Mahalanobis score against
the training classes is compared with the card's threshold and the
:class:`Prediction` says ``out_of_distribution`` True / False with the reason. A version without
usable statistics says "not checked" (``out_of_distribution is None``), never "in distribution".

Ensembles (:mod:`core.classifier.ensemble`): an ensemble version loads as the same class. Its
graph runs every member on the shared input; the logits are the mean of the members' logits,
each pooled feature layer is the members' vectors concatenated (same layer names), and the
Grad-CAM map is the mean of the members' maps, each from the gradient of the ensemble's class
score with respect to that member's activations. A single model takes the same code path with
one source (its own tensors, no sub-model), so a one-member ensemble gives its member's logits
and map.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.classifier.architectures import gradcam_layer_for
from core.classifier.calibration import softmax
from core.classifier.gradcam import (METHODS, ScanMaps, average_maps, cam_from_gradients,
                                     place_in_scan)
from core.classifier.ood import FEATURE_LAYERS, OODStats, verdict
from core.classifier.preprocess import HeadBox, preprocess
from core.errors import ModelCardError

__all__ = ["Prediction", "Classifier", "gradcam_layer_for", "SCRATCH_NOTICE", "TTA_MODES",
           "OOD_STATUSES"]

TTA_MODES = (None, "hflip")

SCRATCH_NOTICE = "trained from scratch, no ImageNet weights"


#: ``Prediction.ood_status`` values.
OOD_STATUSES = ("in distribution", "out of distribution", "not checked")


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float                 # calibrated probability of ``label``
    probabilities: dict[str, float]   # calibrated, sums to 1
    class_index: int
    version: str
    ood_score: float | None = None        # higher = less like the training data
    ood_threshold: float | None = None    # flagged when ood_score > ood_threshold
    out_of_distribution: bool | None = None   # None: not checked (no statistics)
    ood_reason: str = "not checked"

    @property
    def ood_status(self) -> str:
        """"out of distribution", "in distribution" or "not checked"."""
        if self.out_of_distribution is None:
            return OOD_STATUSES[2]
        return OOD_STATUSES[1] if self.out_of_distribution else OOD_STATUSES[0]

    def ood_fields(self) -> dict:
        """The OOD fields as plain JSON values (for ``predict --json`` and tables)."""
        return {"ood_status": self.ood_status, "out_of_distribution": self.out_of_distribution,
                "ood_score": self.ood_score, "ood_threshold": self.ood_threshold,
                "ood_reason": self.ood_reason}


def _layer_name(tensor) -> str:
    """The name of the layer that produced a symbolic Keras tensor ("?" if unknown)."""
    history = getattr(tensor, "_keras_history", None)
    return str(getattr(getattr(history, "operation", None), "name", "?"))


class Classifier:
    """A registry model plus its card; safe to share between users (never mutated).

    ``ood``: the fitted OOD statistics of the card's ``ood`` section (:meth:`load` reads them
    from the version folder); without them predictions say "not checked", with
    ``ood_problem`` (e.g. a missing statistics file) as the reason when given.

    ``model``: the registry's Keras model of ``card`` (for an ensemble card, the model
    :func:`core.classifier.ensemble_graph.ensemble_model` built; ``members`` then names its member
    versions, empty for a single model)."""

    def __init__(self, model, card: dict, *, ood: OODStats | None = None,
                 ood_problem: str | None = None) -> None:
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
        from core.registry import is_ensemble

        self.members: tuple[str, ...] = ()
        if is_ensemble(card):
            from core.classifier.ensemble_graph import member_models

            self.members = tuple(m["version"] for m in card["members"])
            subs = member_models(model, card)
            # sources: (model, its Grad-CAM activations, its logits) per member
            sources = [(sub, sub.outputs[0], sub.outputs[1]) for sub in subs]
            self.gradcam_layer = card.get("gradcam_layer") or ", ".join(dict.fromkeys(
                _layer_name(sub.outputs[0]) for sub in subs))
        else:
            self.gradcam_layer = gradcam_layer_for(card)
            try:
                sources = [(model, model.get_layer(self.gradcam_layer).output,
                            model.get_layer("logits").output)]
            except ValueError as err:
                raise ModelCardError(f"Model {self.version}: {err}") from None
        section = card.get("ood") if isinstance(card.get("ood"), dict) else None
        names = set.intersection(*({layer.name for layer in src.layers}
                                   for src, _, _ in sources))
        if ood is not None and not set(ood.layers) <= names:
            raise ModelCardError(f"Model {self.version}: OOD feature layers "
                                 f"{sorted(set(ood.layers) - names)} not found.")
        self.feature_layers: tuple[str, ...] = (
            ood.layers if ood else tuple(n for n in FEATURE_LAYERS if n in names))
        self._feature_dims = {n: sum(int(src.get_layer(n).output.shape[-1])
                                     for src, _, _ in sources)
                              for n in dict.fromkeys((*self.feature_layers, *FEATURE_LAYERS))
                              if n in names}
        if ood is not None and (section or {}).get("tta", None) != self.tta:
            ood, ood_problem = None, (
                f"the OOD statistics were fitted with test-time averaging "
                f"{(section or {}).get('tta')!r}, this version uses {self.tta!r}")
        self.ood: OODStats | None = ood
        if ood is None:
            ood_problem = ood_problem or (
                f"model version {self.version} has no out-of-distribution statistics "
                "(no 'ood' section in its model card)")
        self.ood_problem: str | None = None if ood else ood_problem
        # One graph for logits and features, so the OOD check costs no second forward pass.
        # Per source: [activations, logits, *pooled features]; a single model's tensors are
        # used as they are, an ensemble's members run as sub-models on the shared input.
        if len(sources) == 1 and not self.members:
            src, target, logits = sources[0]
            outs = [[target, logits, *(self._pooled(src.get_layer(n).output)
                                       for n in self.feature_layers)]]
        else:
            outs = [keras.Model(src.input, [target, logits, *(
                self._pooled(src.get_layer(n).output) for n in self.feature_layers)],
                name=f"head_{i}")(model.input) for i, (src, target, logits) in enumerate(sources)]
        acts = [o[0] for o in outs]
        logits = (outs[0][1] if len(outs) == 1
                  else keras.ops.mean(keras.ops.stack([o[1] for o in outs]), axis=0))
        features = [outs[0][2 + j] if len(outs) == 1 else
                    keras.ops.concatenate([o[2 + j] for o in outs], axis=-1)
                    for j in range(len(self.feature_layers))]
        self._n_maps = len(acts)
        self._grad_model = keras.Model(model.input, [*acts, logits, *features])
        self._fwd_model = keras.Model(model.input, [logits, *features])
        self._grad_fns: dict = {}     # number of target classes -> traced gradient pass
        self._forward_fn = None

    def feature_dim(self, layer: str) -> int:
        """Length of the pooled feature vector of ``layer`` (an ensemble: the members' summed)."""
        try:
            return self._feature_dims[layer]
        except KeyError:
            raise ModelCardError(f"Classifier {self.version} has no pooled feature layer "
                                 f"{layer!r}.") from None

    @staticmethod
    def _pooled(tensor):
        """(N, H, W, C) activations -> their spatial mean (N, C); (N, C) as they are."""
        import keras

        if len(tensor.shape) == 4:
            return keras.ops.mean(keras.ops.cast(tensor, "float32"), axis=(1, 2))
        return keras.ops.cast(tensor, "float32")

    @classmethod
    def load(cls, version: str | None = None, *, weights_dir: str | Path | None = None
             ) -> Classifier:
        """The active version (or ``version``); ``ModelNotFoundError`` if there is none."""
        from core import registry

        card = registry.load_card("classifier", version, weights_dir=weights_dir)
        if registry.is_ensemble(card):
            from core.classifier.ensemble_graph import load_ensemble

            model = load_ensemble(card, weights_dir=weights_dir)
        else:
            model, card = registry.load_model("classifier", card["version"],
                                              weights_dir=weights_dir)
        ood, problem = None, None
        section = card.get("ood")
        if isinstance(section, dict):
            folder = registry.version_dir("classifier", card["version"], weights_dir=weights_dir)
            try:
                ood = OODStats.from_file(folder / section.get("stats_file", ""), section)
            except (ValueError, KeyError, OSError) as err:
                problem = f"model version {card['version']}: {err}"
        return cls(model, card, ood=ood, ood_problem=problem)

    # ---- inference -------------------------------------------------------------------------
    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, HeadBox]:
        """Scan pixels -> (model input (S, S, C), crop box): the card's preprocessing."""
        return preprocess(image, self.preprocessing)

    def ood_check(self, features: list[np.ndarray] | None) -> dict:
        """Prediction OOD fields for one scan's features (one (D_l,) vector per layer), or
        "not checked"."""
        if self.ood is None or features is None:
            return {"ood_reason": f"not checked: {self.ood_problem or 'no features'}"}
        score = float(self.ood.score([np.asarray(f)[None] for f in features])[0])
        flagged, reason = verdict(score, self.ood.threshold, self.ood.percentile)
        return {"ood_score": score, "ood_threshold": self.ood.threshold,
                "out_of_distribution": flagged, "ood_reason": reason}

    def _prediction(self, logits: np.ndarray, features: list[np.ndarray] | None = None
                    ) -> Prediction:
        p = softmax(logits[None], self.temperature)[0]
        i = int(np.argmax(p))
        return Prediction(self.classes[i], float(p[i]),
                          {c: float(v) for c, v in zip(self.classes, p)}, i, self.version,
                          **self.ood_check(features))

    def _forward_all(self, x: np.ndarray) -> list:
        """[logits] or [logits, features] of a preprocessed batch; a compiled graph on
        TensorFlow (eager calls of a Keras model cost about twice as much on the CPU)."""
        import keras

        if keras.backend.backend() != "tensorflow":
            out = self._fwd_model(x, training=False)
        else:
            if self._forward_fn is None:
                import tensorflow as tf

                fwd_model = self._fwd_model
                self._forward_fn = tf.function(lambda t: fwd_model(t, training=False),
                                               reduce_retracing=True)
            out = self._forward_fn(np.asarray(x, np.float32))
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def _forward(self, x: np.ndarray):
        """Logits of a preprocessed batch (the features are computed in the same graph)."""
        return self._forward_all(x)[0]

    def forward_batch(self, x: np.ndarray, batch_size: int = 32
                      ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Preprocessed batch (N, S, S, C) -> (logits (N, K), features: one (N, D_l) array per
        layer of ``feature_layers``), float64, from one forward pass (flip-averaged when the
        card asks for it)."""
        import keras

        def run(chunk: np.ndarray) -> list[np.ndarray]:
            if self.tta != "hflip":
                return [keras.ops.convert_to_numpy(t).astype(np.float64)
                        for t in self._forward_all(chunk)]
            both = [keras.ops.convert_to_numpy(t).astype(np.float64) for t in
                    self._forward_all(np.concatenate([chunk, chunk[:, :, ::-1]]))]
            return [(t[:len(chunk)] + t[len(chunk):]) / 2 for t in both]

        out = [run(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        if not out:
            return np.zeros((0, len(self.classes))), []
        return (np.concatenate([o[0] for o in out]),
                [np.concatenate([o[j] for o in out]) for j in range(1, len(out[0]))])

    def logits_batch(self, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Preprocessed batch (N, S, S, C) -> logits (N, K) float64 (flip-averaged when the card
        asks for it)."""
        return self.forward_batch(x, batch_size)[0]

    def ood_scores(self, features: list[np.ndarray]) -> np.ndarray:
        """OOD scores (N,) of :meth:`forward_batch` features; ``ValueError`` without fitted
        statistics."""
        if self.ood is None:
            raise ValueError(f"OOD not checked: {self.ood_problem}")
        return self.ood.score(features)

    def predict_proba(self, x: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """Preprocessed batch -> probabilities (N, K), temperature-scaled unless told not to."""
        return softmax(self.logits_batch(x), self.temperature if calibrated else 1.0)

    def predict(self, image: np.ndarray) -> Prediction:
        """One scan (float [0, 1] H×W or H×W×3) -> calibrated :class:`Prediction` with its
        OOD check."""
        x, _ = self.prepare(image)
        logits, feats = self.forward_batch(x[None])
        return self._prediction(logits[0], [f[0] for f in feats])

    def _class_index(self, class_name: str | None) -> int:
        if class_name is None:
            return -1
        if class_name not in self.classes:
            raise ValueError(f"Unknown class {class_name!r}; this model knows {self.classes}.")
        return self.classes.index(class_name)

    def _gradients_tf(self, x: np.ndarray, targets: list[int]):
        """One forward pass, then one backward pass per target class (``-1``: the predicted
        one): the activations (one per member), ``grads[target][member]``, the mean logits
        and the pooled features. One traced function per number of targets."""
        import tensorflow as tf

        m = len(targets)
        fn = self._grad_fns.get(m)
        if fn is None:
            grad_model = self._grad_model
            n = self._n_maps

            @tf.function(reduce_retracing=True)
            def fn(x, idx):
                # x: the image, plus its mirror when flip-averaging; the class score (and so
                # the map) is the unflipped image's, the returned logits are the batch mean.
                # One activation tensor per member (one for a single model); the score is the
                # (ensemble's) logit, so each member's gradient is that of the mean logit.
                with tf.GradientTape(persistent=m > 1) as tape:
                    out = grad_model(x, training=False)
                    acts = [tf.cast(a, tf.float32) for a in out[:n]]
                    logits = tf.cast(out[n], tf.float32)
                    feats = out[n + 1:]
                    mean = tf.reduce_mean(logits, axis=0)
                    target = tf.where(idx < 0, tf.argmax(mean, output_type=tf.int32), idx)
                    scores = [tf.gather(logits[0], target[j]) for j in range(m)]
                grads = [[g[0] for g in tape.gradient(s, acts)] for s in scores]
                return ([a[0] for a in acts], grads, mean,
                        [tf.reduce_mean(f, axis=0) for f in feats])

            self._grad_fns[m] = fn
        batch = x[None] if self.tta != "hflip" else np.stack([x, x[:, ::-1]])
        acts, grads, logits, feat = fn(tf.convert_to_tensor(batch, tf.float32),
                                       tf.constant(targets, tf.int32))
        return ([a.numpy() for a in acts], [[g.numpy() for g in gt] for gt in grads],
                logits.numpy().astype(np.float64), [f.numpy().astype(np.float64) for f in feat])

    def explain_all(self, image: np.ndarray, methods: tuple[str, ...] = METHODS
                    ) -> tuple[Prediction, ScanMaps]:
        """The prediction and the map of every class by every CAM method, from one forward
        pass (and one backward pass per class): ``{(method, class): H×W map in [0, 1]}``, a
        :class:`~core.classifier.gradcam.ScanMaps` that keeps the model-space maps and places
        each in the scan when read. Each map equals :meth:`explain`'s for that class and
        method; the page gets them all at once so that switching the class explained runs in
        the browser."""
        import keras

        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"Unknown method {unknown[0]!r}; expected one of {METHODS}.")
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError("Grad-CAM needs the TensorFlow back end (the app's).")
        x, box = self.prepare(image)
        acts, grads, logits, feat = self._gradients_tf(x, list(range(len(self.classes))))
        cams = {(m, c): average_maps([cam_from_gradients(a, g, m) for a, g in zip(acts, grads[i])])
                for m in methods for i, c in enumerate(self.classes)}
        return self._prediction(logits, feat), ScanMaps(cams, box, np.asarray(image).shape[:2])

    def explain_cam(self, image: np.ndarray, class_name: str | None = None,
                    method: str = "gradcam") -> tuple[Prediction, np.ndarray, HeadBox]:
        """Like :meth:`explain` but returns the model-space map (h, w) and the crop box too.
        An ensemble's map is the mean of its members' normalised maps."""
        import keras

        if method not in METHODS:
            raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")
        idx = self._class_index(class_name)
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError("Grad-CAM needs the TensorFlow back end (the app's).")
        x, box = self.prepare(image)
        acts, (grads,), logits, feat = self._gradients_tf(x, [idx])
        cam = average_maps([cam_from_gradients(a, g, method) for a, g in zip(acts, grads)])
        return self._prediction(logits, feat), cam, box

    def explain(self, image: np.ndarray, class_name: str | None = None, method: str = "gradcam"
                ) -> tuple[Prediction, np.ndarray]:
        """One forward pass -> (calibrated prediction, Grad-CAM map H×W of ``image`` in [0, 1])
        for ``class_name`` or, when None, the predicted class."""
        pred, cam, box = self.explain_cam(image, class_name, method)
        return pred, place_in_scan(cam, box, np.asarray(image).shape[:2])
