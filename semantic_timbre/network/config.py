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
could not build it). Also the thesis's five parameters' checks (check_parameters) and the two presets'
architectures. This module needs no TensorFlow; network/model_files.py reads and writes it in a
model folder, network/conditioning.py computes notes' conditions from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from semantic_timbre import layout
from semantic_timbre.errors import UserError

PARAMETER_NAMES = ("input_shape", "conv_filters", "conv_kernels", "conv_strides", "latent_space_dimension")


THESIS_CONFIGURATION = {
    "input_shape": (512, 64, 1),
    "conv_filters": (512, 256, 128, 64, 32),
    "conv_kernels": (3, 3, 3, 3, 3),
    "conv_strides": (2, 2, 2, 2, (2, 1)),
    "latent_space_dimension": 128,
}


#: A small model for the demo: the thesis's kernels, strides and latent size with few filters in
#: the full-resolution layers (where the cost is) and more in the coarse ones (where it is cheap),
#: so that its epochs on the demo set take minutes on two CPU cores (bench/bench_demo_quality.py);
#: its decoder resizes then convolves (no checkerboard) and it trains with the spectral loss
#: (config.UPSAMPLINGS and LOSSES; the measurements that chose them: bench/bench_demo_quality.py).
DEMO_CONFIGURATION = {**THESIS_CONFIGURATION, "conv_filters": (16, 16, 32, 64, 64), "upsampling": "nearest",
                      "loss": "spectral"}



class ModelFolderError(UserError):
    """The model folder is missing, incomplete or does not hold a model this code can load."""



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


def _frozen(value):
    return tuple(_frozen(item) for item in value) if isinstance(value, (list, tuple)) else value



def _listed(value):
    return [_listed(item) for item in value] if isinstance(value, (list, tuple)) else value



# ---------------------------------------------------------------- the thesis's five parameters

def _plain(value):
    """Numpy scalars to Python numbers, keeping list/tuple containers as they are."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value



def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0



def _is_size(value) -> bool:
    """An int, or a pair of ints (a kernel or a stride)."""
    if _is_count(value):
        return True
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_count(item) for item in value)



def check_parameters(parameters, source: str = "the parameters") -> list:
    """Return the thesis's parameter list [input_shape, conv_filters, conv_kernels, conv_strides,
    latent_space_dimension] as plain Python values, or raise ModelFolderError saying what is wrong.

    Accepts the list (or tuple) itself or a dict with those five keys.
    """
    expected = ("a list [input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension], "
                "e.g. [(512, 64, 1), (512, 256, 128, 64, 32), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 128]")
    if isinstance(parameters, dict):
        missing = [name for name in PARAMETER_NAMES if name not in parameters]
        if missing:
            raise ModelFolderError(f"{source} lacks {', '.join(missing)}: expected {expected}")
        parameters = [parameters[name] for name in PARAMETER_NAMES]
    if not isinstance(parameters, (list, tuple)) or len(parameters) != 5:
        raise ModelFolderError(f"{source} is not of the expected form: expected {expected}")
    input_shape, filters, kernels, strides, latent = parameters
    problems = []
    if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3 and all(map(_is_count, input_shape))):
        problems.append(f"input_shape {input_shape!r} is not three positive integers")
    if not (isinstance(filters, (list, tuple)) and filters and all(map(_is_count, filters))):
        problems.append(f"conv_filters {filters!r} is not a list of positive integers")
    for name, sizes in (("conv_kernels", kernels), ("conv_strides", strides)):
        if not (isinstance(sizes, (list, tuple)) and all(map(_is_size, sizes))):
            problems.append(f"{name} {sizes!r} is not a list of integers or integer pairs")
        elif isinstance(filters, (list, tuple)) and len(sizes) != len(filters):
            problems.append(f"{name} has {len(sizes)} entries but conv_filters has {len(filters)}")
    if not _is_count(latent):
        problems.append(f"latent_space_dimension {latent!r} is not a positive integer")
    if not problems:
        problems = _size_problems(input_shape, filters, kernels, strides, latent)
    if problems:
        raise ModelFolderError(f"{source} is not of the expected form ({'; '.join(problems)}): expected {expected}")
    return [_plain(item) for item in parameters]



MAX_PARAMETERS = 200_000_000  # 800 MB of float32 weights: 70 times the thesis's model; more is a typo



def _size_problems(input_shape, filters, kernels, strides, latent) -> list[str]:
    """What makes sizes absurd (a model that would not fit in memory, a layer larger than its
    input), in words; empty when the sizes can be built."""
    problems = []
    if any(size > 65_536 for size in input_shape) or input_shape[2] > 16:
        problems.append(f"input_shape {tuple(input_shape)} is far larger than a spectrogram (512, 64, 1)")
    if len(filters) > 16 or any(count > 8192 for count in filters):
        problems.append(f"conv_filters {tuple(filters)} has more than 16 layers or 8,192 filters a layer")
    pairs = [(size, size) if isinstance(size, int) else tuple(size) for size in kernels]
    steps = [(size, size) if isinstance(size, int) else tuple(size) for size in strides]
    if any(max(pair) > 64 for pair in pairs) or any(max(pair) > 64 for pair in steps):
        problems.append("a kernel or stride is larger than 64")
    if latent > 65_536:
        problems.append(f"latent_space_dimension {latent:,} is larger than 65,536")
    if problems:
        return problems
    height, width, channels = input_shape
    count = 0
    for size, step, out in zip(pairs, steps, filters):
        count += size[0] * size[1] * channels * out + 3 * out  # kernel, bias, batch norm (twice)
        height, width, channels = -(-height // step[0]), -(-width // step[1]), out
    flat = height * width * channels
    count *= 2  # the decoder mirrors the encoder's convolutions
    count += 2 * (flat * latent + latent) + latent * flat + flat  # mu, log_variance, the decoder's dense layer
    if count > MAX_PARAMETERS:
        problems.append(f"these sizes make a model of about {count:,} weights (more than {MAX_PARAMETERS:,}; the "
                        f"thesis's has 2,766,017), which would not fit in memory")
    return problems



def _as_tuples(value):
    """The thesis's pickled form: tuples all the way down."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(item) for item in value)
    return value
