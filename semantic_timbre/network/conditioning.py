"""The model's configuration, one frozen object: the thesis's architecture and its conditioning.

Conditioning (the latent-space study's three models):
- "none": the thesis's VAE; its model folder is exactly the thesis's (parameters.pkl,
  parameters.json with the five parameters, weights.h5);
- "descriptor": a one-hot of the 19 descriptors and the magnitude scaled to [0, 1] (a clean note:
  all zeros);
- "perceptual": the seven AudioCommons timbral features of the note's audio (perceptual.py),
  standardised with the training set's mean and standard deviation.

The condition enters the encoder beside the flattened features and the decoder beside z, as a
named input "condition". parameters.json records the conditioning (kind, names, normalisation)
under "conditioning"; no parameters.pkl is written for a conditioned model (the thesis's code
could not build it). This module needs no TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from semantic_timbre import layout
from semantic_timbre.errors import UserError
from semantic_timbre.network.model_files import PARAMETER_NAMES, ModelFolderError, check_parameters

CONDITIONINGS = ("none", "descriptor", "perceptual")
#: How the decoder upsamples: "transposed" (the thesis's strided Conv2DTranspose) or a resize
#: ("nearest" or "bilinear" UpSampling2D) followed by a stride-1 Conv2D, which has no checkerboard.
UPSAMPLINGS = ("transposed", "nearest", "bilinear")
#: The training loss: "thesis" (1e6 x MSE + KL) or "spectral" (vae.py: the thesis's terms plus the
#: loud bins' linear magnitude and the frame-energy envelope).
LOSSES = ("thesis", "spectral")
MAGNITUDE_NAME = "magnitude"


class ConditionError(UserError):
    """A condition asked of a model that cannot have it (a descriptor it never saw, ...)."""


@dataclass(frozen=True)
class Conditioning:
    """What a model is conditioned on.

    Attributes
    ----------
    kind : "none", "descriptor" or "perceptual"
    names : the condition vector's entries (descriptor: the descriptors then "magnitude";
        perceptual: the features)
    mean, std : perceptual only: condition = (features - mean) / std, per feature
    profiles : ((descriptor, magnitude, values), ...): the descriptors and magnitudes the training
        notes held (clean notes: descriptor "", magnitude 0); perceptual: `values` is their mean
        raw features, the target a description is generated with (descriptor: `values` is empty)
    """

    kind: str = "none"
    names: tuple = ()
    mean: tuple = ()
    std: tuple = ()
    profiles: tuple = ()

    def __post_init__(self):
        if self.kind not in CONDITIONINGS:
            raise ModelFolderError(f"unknown conditioning '{self.kind}': choose {', '.join(CONDITIONINGS)}")
        object.__setattr__(self, "names", tuple(str(name) for name in self.names))
        object.__setattr__(self, "mean", tuple(float(value) for value in self.mean))
        object.__setattr__(self, "std", tuple(float(value) for value in self.std))
        object.__setattr__(self, "profiles", tuple(sorted(
            (str(descriptor), int(magnitude), tuple(float(value) for value in values))
            for descriptor, magnitude, values in self.profiles)))
        if (self.kind == "none") != (not self.names):
            raise ModelFolderError(f"conditioning '{self.kind}' with {len(self.names)} condition entries")
        if self.kind == "perceptual" and not (len(self.mean) == len(self.std) == len(self.names)
                                              and all(value > 0 for value in self.std)):
            raise ModelFolderError("a perceptual conditioning needs a mean and a positive std per feature")
        if not all(np.isfinite(value) for value in self.mean + self.std):
            raise ModelFolderError("its normalisation holds NaN or infinite values")
        if self.kind == "descriptor" and len(self.names) < 2:
            raise ModelFolderError(f"a descriptor conditioning needs descriptors and a magnitude, not {len(self.names)} "
                                   "entry")
        width = len(self.names) if self.kind == "perceptual" else 0
        for descriptor, magnitude, values in self.profiles:
            if not 0 <= magnitude <= 100:
                raise ModelFolderError(f"the profile of {descriptor or 'clean'} has magnitude {magnitude}, outside 0..100")
            if len(values) != width or not all(np.isfinite(value) for value in values):
                raise ModelFolderError(f"the profile of {descriptor or 'clean'} {magnitude} holds {len(values)} value(s), "
                                       f"expected {width} finite ones")

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def descriptors(self) -> tuple:
        """The descriptors a descriptor-conditioned model knows (empty for the other kinds)."""
        return self.names[:-1] if self.kind == "descriptor" else ()

    @classmethod
    def descriptor(cls, notes=()) -> "Conditioning":
        """The one-hot of the 19 descriptors and the magnitude; `notes`: the training notes (their
        descriptors and magnitudes are recorded)."""
        pairs = {_profile_key(note) for note in notes}
        return cls("descriptor", tuple(layout.DESCRIPTORS) + (MAGNITUDE_NAME,),
                   profiles=tuple((descriptor, magnitude, ()) for descriptor, magnitude in pairs))

    @classmethod
    def perceptual(cls, notes, features: np.ndarray) -> "Conditioning":
        """Standardise with the mean and std of `features` (N, 7), the training notes' raw features,
        and keep each descriptor's and magnitude's mean features."""
        from semantic_timbre.data.perceptual import FEATURES

        notes, features = list(notes), np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURES))
        std = features.std(axis=0)
        keys = [_profile_key(note) for note in notes]
        profiles = tuple((descriptor, magnitude, tuple(features[[k == (descriptor, magnitude) for k in keys]].mean(0)))
                         for descriptor, magnitude in sorted(set(keys)))
        return cls("perceptual", FEATURES, tuple(features.mean(axis=0)), tuple(np.where(std > 1e-9, std, 1.0)),
                   profiles)

    def to_json(self) -> dict:
        data = {"kind": self.kind, "names": list(self.names)}
        if self.kind == "perceptual":
            data["normalisation"] = {"mean": list(self.mean), "std": list(self.std)}
        profiles: dict = {}
        for descriptor, magnitude, values in self.profiles:
            profiles.setdefault(descriptor or "clean", {})[str(magnitude)] = list(values)
        data["trained_on"] = profiles
        return data

    @classmethod
    def from_json(cls, data) -> "Conditioning":
        try:
            for key, kind in (("names", list), ("normalisation", dict), ("trained_on", dict)):
                if key in data and not isinstance(data[key], kind):
                    raise TypeError(f"'{key}' is {type(data[key]).__name__}, not a {kind.__name__}")
            normalisation = data.get("normalisation", {})
            profiles = tuple(("" if descriptor == "clean" else descriptor, int(magnitude), tuple(values))
                             for descriptor, magnitudes in data.get("trained_on", {}).items()
                             for magnitude, values in magnitudes.items())
            return cls(data["kind"], tuple(data.get("names", ())), tuple(normalisation.get("mean", ())),
                       tuple(normalisation.get("std", ())), profiles)
        except (AttributeError, KeyError, TypeError, ValueError, ModelFolderError) as error:
            raise ModelFolderError(f"the conditioning recorded in parameters.json is malformed ({error}): put back the "
                                   "parameters.json written with the model (an edited copy does not match its "
                                   "weights), or train the model again") from None

    def trained_descriptors(self) -> list[str]:
        """The descriptors the model was trained with (at a magnitude above 0)."""
        return sorted({descriptor for descriptor, _, _ in self.profiles if descriptor})

    def target(self, descriptor: str, magnitude: float) -> np.ndarray:
        """The condition (size,) to generate `descriptor` at `magnitude` (0-100) with.

        descriptor: its one-hot and magnitude / 100 (magnitude 0: the clean note's zeros);
        perceptual: the mean raw features of the descriptor's training notes at that magnitude,
        interpolated linearly between the magnitudes they held (0: the clean notes' mean), then
        standardised.

        Raises
        ------
        ConditionError
            The model was trained with no note of `descriptor`.
        """
        magnitude = float(magnitude)
        known = self.trained_descriptors()
        if magnitude > 0 and descriptor not in known:
            raise ConditionError(f"this {self.kind}-conditioned model was trained with no '{descriptor}' note: "
                                 f"it knows {', '.join(known) or 'no descriptor'}")
        if self.kind == "descriptor":
            return self.of_descriptors([descriptor], [magnitude])[0]
        points = {m: np.array(values) for d, m, values in self.profiles if (d == descriptor and m > 0) or d == ""}
        if magnitude <= 0 and 0 not in points:
            raise ConditionError("this perceptual-conditioned model was trained with no clean note (magnitude 0): "
                                 "give a magnitude above 0")
        magnitudes = sorted(points)
        table = np.array([points[m] for m in magnitudes])
        raw = np.array([np.interp(magnitude, magnitudes, table[:, i]) for i in range(self.size)])
        return self.of_features(raw)[0]

    # -- condition vectors

    def of_descriptors(self, descriptors, magnitudes) -> np.ndarray:
        """Descriptor conditions (N, size): one-hot and magnitude / 100; magnitude 0 is the clean note."""
        known = {name: index for index, name in enumerate(self.descriptors)}
        magnitudes = np.asarray(magnitudes, dtype=np.float64).reshape(-1)
        descriptors = list(descriptors)
        conditions = np.zeros((len(descriptors), self.size), np.float32)
        for row, (descriptor, magnitude) in enumerate(zip(descriptors, magnitudes)):
            if magnitude <= 0:
                continue  # a clean note: no descriptor, magnitude 0
            if descriptor not in known:
                raise ConditionError(f"this descriptor-conditioned model never saw '{descriptor}': it knows "
                                     f"{', '.join(self.descriptors)}")
            conditions[row, known[descriptor]] = 1.0
            conditions[row, -1] = magnitude / 100.0
        return conditions

    def checked(self, conditions, count: int) -> np.ndarray | None:
        """The conditions (count, size) a model of this conditioning is given, as float32, checked
        (None for an unconditioned model, which must be given none); raises ValueError."""
        if not self.size:
            if conditions is not None:
                raise ValueError("this model is not conditioned: give no conditions")
            return None
        if conditions is None:
            raise ValueError(f"this {self.kind}-conditioned model needs conditions of shape ({count}, {self.size})")
        conditions = np.asarray(conditions, dtype=np.float32)
        if conditions.shape != (count, self.size) or not np.all(np.isfinite(conditions)):
            raise ValueError(f"expected finite conditions of shape ({count}, {self.size}) "
                             f"({', '.join(self.names)}), got {conditions.shape}")
        return conditions

    def of_features(self, features) -> np.ndarray:
        """Perceptual conditions (N, size) from raw timbral features (N, 7)."""
        features = np.asarray(features, dtype=np.float64).reshape(-1, self.size)
        return ((features - np.array(self.mean)) / np.array(self.std)).astype(np.float32)


@dataclass(frozen=True)
class ModelConfig:
    """The whole configuration of a model: the thesis's five parameters and the conditioning."""

    input_shape: tuple
    conv_filters: tuple
    conv_kernels: tuple
    conv_strides: tuple
    latent_space_dimension: int
    conditioning: Conditioning = field(default_factory=Conditioning)
    upsampling: str = "transposed"
    loss: str = "thesis"

    def __post_init__(self):
        parameters = check_parameters(self.parameters, "the model's configuration")
        for name, value in zip(PARAMETER_NAMES, parameters):
            object.__setattr__(self, name, _frozen(value))
        if self.upsampling not in UPSAMPLINGS:
            raise ModelFolderError(f"unknown decoder upsampling '{self.upsampling}': choose {', '.join(UPSAMPLINGS)}")
        if self.loss not in LOSSES:
            raise ModelFolderError(f"unknown loss '{self.loss}': choose {', '.join(LOSSES)}")

    @property
    def parameters(self) -> list:
        """The thesis's list [input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension]."""
        return [_listed(getattr(self, name)) for name in PARAMETER_NAMES]

    @property
    def conditioned(self) -> bool:
        return self.conditioning.kind != "none"

    @property
    def thesis_buildable(self) -> bool:
        """Whether the thesis's code builds this architecture (unconditioned, transposed convolutions):
        then the model folder holds the thesis's parameters.pkl too."""
        return not self.conditioned and self.upsampling == "transposed"

    @property
    def extended(self) -> bool:
        """Whether parameters.json holds more than the thesis's five parameters."""
        return self.conditioned or self.upsampling != "transposed" or self.loss != "thesis"

    @classmethod
    def from_parameters(cls, parameters, conditioning: Conditioning | None = None, *, upsampling: str = "transposed",
                        loss: str = "thesis") -> "ModelConfig":
        parameters = check_parameters(parameters)
        return cls(*parameters, conditioning=conditioning or Conditioning(), upsampling=upsampling, loss=loss)

    def to_json(self) -> dict:
        """parameters.json's content: the thesis's five parameters, then what differs from the thesis
        (the conditioning, the decoder's upsampling, the loss); the thesis's model writes the five alone."""
        data = dict(zip(PARAMETER_NAMES, self.parameters))
        if self.conditioned:
            data["conditioning"] = self.conditioning.to_json()
        if self.upsampling != "transposed":
            data["upsampling"] = self.upsampling
        if self.loss != "thesis":
            data["loss"] = self.loss
        return data

    @classmethod
    def from_json(cls, data, source: str = "parameters.json") -> "ModelConfig":
        """Read parameters.json; a file without 'upsampling' or 'loss' (every model folder written
        before they existed) is the thesis's transposed decoder and loss."""
        parameters = check_parameters(data, source)
        extras = data if isinstance(data, dict) else {}
        conditioning = Conditioning.from_json(extras["conditioning"]) if "conditioning" in extras else Conditioning()
        for key, choices in (("upsampling", UPSAMPLINGS), ("loss", LOSSES)):
            if key in extras and extras[key] not in choices:
                raise ModelFolderError(f"{source} gives {key} {extras[key]!r}, which this code does not know "
                                       f"({', '.join(choices)}): put back the parameters.json written with the model, "
                                       f"or update this code")
        return cls(*parameters, conditioning=conditioning, upsampling=extras.get("upsampling", "transposed"),
                   loss=extras.get("loss", "thesis"))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"


def _profile_key(note) -> tuple[str, int]:
    return ("", 0) if note.magnitude <= 0 else (note.descriptor, int(note.magnitude))


def note_conditions(conditioning: Conditioning, notes, *, audio_dir=layout.AUDIO_DIR, minmax_dir=layout.MINMAX_DIR,
                    progress: bool = False, log=print) -> np.ndarray | None:
    """Each note's own condition (N, size), or None for an unconditioned model.

    Perceptual features come from minmax/perceptual_features.npz, or from the notes' audio under
    `audio_dir` (then cached); see perceptual.note_features for the errors.
    """
    notes = list(notes)
    if conditioning.kind == "none":
        return None
    if conditioning.kind == "descriptor":
        return conditioning.of_descriptors([note.descriptor for note in notes], [note.magnitude for note in notes])
    from semantic_timbre.data.perceptual import note_features

    return conditioning.of_features(note_features(notes, audio_dir=audio_dir, minmax_dir=minmax_dir,
                                                  progress=progress, log=log))


def conditions_for_model(model_dir, notes, *, audio_dir=layout.AUDIO_DIR, minmax_dir=layout.MINMAX_DIR,
                         progress: bool = False, log=print) -> np.ndarray | None:
    """The conditions of `notes` for the model in `model_dir` (None: it is not conditioned), read
    from its parameters.json without TensorFlow, so that a missing condition is reported first."""
    from semantic_timbre.network.model_files import check_model_config

    return note_conditions(check_model_config(model_dir).conditioning, notes, audio_dir=audio_dir,
                           minmax_dir=minmax_dir, progress=progress, log=log)


def _frozen(value):
    return tuple(_frozen(item) for item in value) if isinstance(value, (list, tuple)) else value


def _listed(value):
    return [_listed(item) for item in value] if isinstance(value, (list, tuple)) else value
