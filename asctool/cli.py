"""The ``asctool`` command line: one thin command per stage.

Each command parses its options, calls one stage function and renders the
result. Heavy imports (TensorFlow, librosa) happen inside the command bodies so
that ``asctool --help`` stays fast. Errors raised as
:class:`asctool.errors.AsctoolError` become a one-line message and exit 1, and
so do operating-system errors (a full disk, a failing device: ``OSError``,
and HDF5's reports of them), naming the file.

Signals: :func:`main` treats SIGTERM and SIGHUP like SIGINT (Ctrl-C): the
first one raises an exception in the running stage, so temporary files are
removed and worker processes stopped as for any error; then one line
(``Error: interrupted by SIGTERM ...``) and the process ends by that signal
(shell status 128 + N: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
A repeated signal during that clean-up is ignored; ``kill -9`` still ends the
process at once (and leaves its temporary files, see docs/reliability.md).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import click

from . import __version__
from .cli_support import (DIRECTORY, INPUT_FILE, OUT_FILE, _CLASSES_HELP, _INTERRUPTS, _Group, _RegistryChoice,
                          _RegistryHelpOption, _augment_methods, _batch_augment_help, _code_backends,
                          _ensemble_methods, _fusion_methods, _parse_shape, _presets)
from .io import interrupt, interrupted

__all__ = ["main", "cli"]

log = logging.getLogger(__name__)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("-v", "--verbose", count=True, help="More logging; show tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.version_option(__version__, prog_name="asctool")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Acoustic scene classification, one stage per command.

    Stages read and write artifacts on disk (manifests as TSV, features and
    scores as HDF5, models as .keras/.tflite) so that a shell recipe can chain
    them and every intermediate file can be inspected (asctool inspect FILE).
    """
    from .provenance import set_command
    from .console import configure

    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    configure(-1 if quiet else verbose)
    set_command(["asctool", *sys.argv[1:]])


def _echo_summary(summary) -> None:
    """Print a stage's summary (a dict) as JSON on stdout, if it returned one."""
    if summary:
        click.echo(json.dumps(summary, indent=2, default=str))


# --------------------------------------------------------------------------
@cli.command()
@click.option("--dataset-root", required=True, type=DIRECTORY, help="Root of a data set: TAU (evaluation_setup/), a DCASE evaluation set, a metadata CSV or a folder per class.")
@click.option("--out-dir", required=True, type=DIRECTORY, help="Folder for the manifests.")
@click.option("--setup", default=None, help="Evaluation setup name, prefix of the split files and manifests  [default: fold1; foldK with --fold K; all for a metadata CSV or class folders]")
@click.option("--check-audio/--no-check-audio", default=True, help="Check that every listed audio file exists.")
@click.option("--force", is_flag=True, help="Overwrite existing manifests.")
@click.option("--classes", "classes_path", type=INPUT_FILE, default=None, help="The data set's classes, one per line (default: from the data: the DCASE scenes or coarse classes when most labels are theirs, else the labels found, written to SETUP_classes.txt).")
@click.option("--layout", type=click.Choice(["auto", "tau", "eval", "metadata", "folders"]), default="auto", help="Data set layout (docs/prepare.md).")
@click.option("--metadata", type=INPUT_FILE, default=None, help="Metadata CSV with file name, label and fold columns (ESC-50, UrbanSound8K style; default: the one CSV in the root, meta/ or metadata/).")
@click.option("--fold", default=None, help="Cross-validation fold to evaluate on: SETUP_train.tsv holds the other folds.")
@click.option("--label-column", default=None, help="Label column of the metadata CSV  [default: label, category, class...]")
@click.option("--fold-column", default=None, help="Fold column of the metadata CSV  [default: fold]")
@click.option("--filename-column", default=None, help="File name column of the metadata CSV  [default: filename, slice_file_name...]")
def prepare(dataset_root: Path, out_dir: Path, setup, check_audio: bool, force: bool, classes_path, layout, metadata,
            fold, label_column, fold_column, filename_column) -> None:
    """Read a data set layout and write manifests (SETUP_train/evaluate/test.tsv)."""
    from .stages.prepare import run

    _echo_summary(run(dataset_root, out_dir, setup=setup, check_audio=check_audio, force=force,
                      classes_path=classes_path, layout=layout, metadata=metadata, fold=fold,
                      label_column=label_column, fold_column=fold_column, filename_column=filename_column))


@cli.command()
@click.option("--out-dir", required=True, type=DIRECTORY, help="Folder to write the dataset to (TAU layout).")
@click.option("--clips-per-class", default=12, type=click.IntRange(min=2), help="Device-a training clips per scene.")
@click.option("--duration", default=10.0, type=click.FloatRange(min=1.0), help="Clip duration in seconds.")
@click.option("--sr", default=44100, type=click.IntRange(min=8000), help="Sample rate in Hz.")
@click.option("--channels", default=1, type=click.IntRange(1, 2), help="1 (mono, like task 1a) or 2 (stereo, like task 1b: use with --sr 48000).")
@click.option("--devices", default="a,b,c,s1,s2,s3,s4,s5,s6", help="Comma-separated devices to write (s1-s6 need a).")
@click.option("--seed", default=0, type=click.IntRange(min=0), help="Random seed; the same seed gives byte-identical files.")
@click.option("--nj", default=1, type=click.IntRange(min=1), help="Worker processes (the files do not depend on it).")
@click.option("--force", is_flag=True, help="Write into a non-empty folder.")
def synth(out_dir: Path, clips_per_class: int, duration: float, sr: int, channels: int, devices: str, seed: int,
          nj: int, force: bool) -> None:
    """Synthesize the small demo dataset in the TAU layout (see docs/synth.md)."""
    from .stages.synth import run

    _echo_summary(run(out_dir, clips_per_class=clips_per_class, duration=duration, sr=sr, seed=seed,
                      force=force, channels=channels, devices=devices, nj=nj))


@cli.command()
@click.argument("method", type=_RegistryChoice(_augment_methods))
@click.option("--manifest", "manifest_path", required=True, type=INPUT_FILE, help="Input manifest (TSV).")
@click.option("--out-dir", required=True, type=DIRECTORY, help="Folder for the augmented audio.")
@click.option("--out-manifest", required=True, type=OUT_FILE, help="Manifest of the augmented clips.")
@click.option("--rir-dir", type=DIRECTORY, default=None, help="Measured room impulse responses (reverb, reverb-drc).")
@click.option("--simulate-rooms", type=click.IntRange(min=1), default=None, help="Simulate N shoebox rooms instead of --rir-dir.")
@click.option("--exclude-locations", type=INPUT_FILE, default=None, help="Evaluation manifest: drop sources recorded at its locations.")
@click.option("--devices", default=None, help="Comma-separated source devices (default: a for spectrum-correction (its reference device), reverb, reverb-drc; every row for pitch, speed, noise, mix).")
@click.option("--per-device", is_flag=True, help="spectrum-correction: one response (and one copy) per target device.")
@click.option("--format", "audio_format", type=click.Choice(["flac", "wav"]), default="flac", help="Audio file format.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a method parameter (e.g. n_steps_max=2).")
@click.option("--nj", default=1, type=click.IntRange(min=1), help="Worker processes.")
@click.option("--seed", default=0, type=click.IntRange(min=0), help="Random seed; per-clip seeds derive from it and the clip id.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out-manifest and rewrite every clip in --out-dir.")
@click.option("--classes", "classes_path", type=INPUT_FILE, default=None, help=_CLASSES_HELP)
def augment(method: str, manifest_path: Path, out_dir: Path, out_manifest: Path, rir_dir, simulate_rooms,
            exclude_locations, devices, per_device, audio_format, params, nj, seed, force, classes_path) -> None:
    """Write one augmented copy of the clips of a manifest (METHOD as in docs/reference.md 5).

    Prints a JSON summary; see docs/augment.md for each method's parameters.
    """
    from .stages.augment import run

    _echo_summary(run(
        method, manifest_path, out_dir=out_dir, out_manifest=out_manifest, rir_dir=rir_dir,
        simulate_rooms=simulate_rooms, exclude_locations=exclude_locations, devices=devices,
        per_device=per_device, audio_format=audio_format, params=params, nj=nj, seed=seed, force=force,
        classes_path=classes_path,
    ))


def _check_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--shard K/N: a usage error (exit 2) unless 1 <= K <= N."""
    if value is None:
        return None
    from .errors import ConfigError
    from .stages.featurize import parse_shard

    try:
        k, n = parse_shard(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--shard "), ctx=ctx, param=param) from None
    return f"{k}/{n}"


def _check_featurize_value(ctx: click.Context, param: click.Parameter, value):
    """--duration SECONDS|auto, --pad-tolerance X and --resample [HZ]: a usage error (exit 2) for anything else."""
    if value is None:
        return None
    from .errors import ConfigError
    from .stages.featurize import parse_duration, parse_pad_tolerance, parse_resample

    parse = {"duration": parse_duration, "pad_tolerance": parse_pad_tolerance}.get(param.name, parse_resample)
    try:
        return parse(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"--{param.name.replace('_', '-')} "), ctx=ctx,
                                 param=param) from None


@cli.command()
@click.option("--manifest", "manifest_path", type=INPUT_FILE, default=None, help="Input manifest (TSV); with --combine, checked against the shards.")
@click.option("--out", required=True, type=OUT_FILE, help="Features file to write (HDF5).")
@click.option("--preset", type=_RegistryChoice(_presets), default=None, help="Packaged front end (default 1a).")
@click.option("--config", "config_path", type=INPUT_FILE, default=None, help="Front-end YAML config (instead of --preset).")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", help="Stored precision.")
@click.option("--resample", is_flag=False, flag_value="preset", default=None, metavar="[HZ]", callback=_check_featurize_value, help="Resample clips of another rate instead of failing: to the front end's rate, or to HZ (which becomes the front end's rate).")
@click.option("--duration", default=None, metavar="SECONDS|auto", callback=_check_featurize_value, help="Clip length of the front end (default the preset's or config's); auto: the one length of every clip of the manifest.")
@click.option("--pad-tolerance", default=None, metavar="FRACTION", callback=_check_featurize_value, help="Zero-pad clips that lack at most this fraction of the duration (default the preset's, 0.1; 1: any shorter clip).")
@click.option("--nj", default=1, type=click.IntRange(min=1), help="Worker processes.")
@click.option("--shard", default=None, metavar="K/N", callback=_check_shard, help="Process only shard K of N (1-based, contiguous blocks of the manifest).")
@click.option("--combine", "combine", multiple=True, type=INPUT_FILE, help="Combine these shard files into --out (virtual dataset, no copy) instead of featurizing.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--classes", "classes_path", type=INPUT_FILE, default=None,
              help="The data set's own classes, one per line (default: the DCASE scenes or the 3 coarse "
                   "classes); recorded in --out for train.")
def featurize(manifest_path, out, preset, config_path, dtype, resample, duration, pad_tolerance, nj, shard, combine,
              force, classes_path) -> None:
    """Compute model-input features (log-mel + deltas) for every clip of a manifest.

    Writes FEATS.h5 with exactly what a model consumes (preset 1a: 128x423x3,
    1b: 128x461x6). See docs/featurize.md for the config keys, the audio
    rules and the shard workflow.
    """
    if manifest_path is None and not combine:
        raise click.UsageError("--manifest is required (unless combining shards with --combine)")
    from .stages.featurize import run

    _echo_summary(run(
        manifest_path, out, preset=preset, config_path=config_path, dtype=dtype, resample=resample or False,
        duration=duration, pad_tolerance=pad_tolerance, nj=nj, shard=shard, combine=combine, force=force,
        classes_path=classes_path,
    ))


@cli.command()
@click.option("--manifest", "manifest_path", required=True, type=INPUT_FILE, help="Input manifest (TSV).")
@click.option("--extractor", required=True, help="Extractor from the registry: openl3, birdnet, keras, tflite (an unknown name is refused with the list).")
@click.option("--out", required=True, type=OUT_FILE, help="Embeddings file to write (HDF5).")
@click.option("--weights", type=INPUT_FILE, default=None, help="openl3: the official weight file (.h5 or .h5.gz; asctool download openl3).")
@click.option("--input-repr", type=click.Choice(["linear", "mel128", "mel256"]), default=None, help="openl3: front end [default: mel256].")
@click.option("--content-type", type=click.Choice(["music", "env"]), default=None, help="openl3: training content of the weights [default: music].")
@click.option("--embedding-size", type=click.Choice(["512", "6144"]), default=None, help="openl3: embedding dimensions [default: 6144].")
@click.option("--model", "model_path", type=INPUT_FILE, default=None, help="keras/tflite: the model file (birdnet: another BirdNET .tflite).")
@click.option("--layer", default=None, help="keras/tflite: the layer (tensor) whose output is the embedding.")
@click.option("--sample-rate", type=int, default=None, help="keras/tflite: the model's input rate in Hz (fixed at 48000 for openl3 and birdnet).")
@click.option("--window", type=float, default=None, help="keras/tflite: seconds of audio per window.")
@click.option("--hop", type=float, default=None, help="Seconds between windows [default: openl3 0.1, birdnet 3, keras/tflite the window].")
@click.option("--nj", default=1, type=click.IntRange(min=1), help="Worker processes (the embeddings do not depend on it).")
@click.option("--batch-size", default=32, type=click.IntRange(min=1), help="Windows per model call.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def embed(manifest_path, extractor, out, weights, input_repr, content_type, embedding_size, model_path, layer,
          sample_rate, window, hop, nj, batch_size, force) -> None:
    """Embed every clip of a manifest with a pretrained model (OpenL3, BirdNET or your own).

    Writes EMB.h5: embeddings (N, T, D) float32, one row of T windows per
    clip, with window_times and the extractor's settings. See docs/embed.md.
    """
    from .stages.embed import run

    options = {"weights": weights, "input_repr": input_repr, "content_type": content_type,
               "embedding_size": None if embedding_size is None else int(embedding_size), "model": model_path,
               "layer": layer, "sample_rate": sample_rate, "window": window, "hop": hop}
    _echo_summary(run(manifest_path, out, extractor=extractor, options=options, nj=nj, batch_size=batch_size,
                      force=force))


@cli.command()
@click.option("--manifest", "manifest_path", required=True, type=INPUT_FILE, help="Input manifest (TSV).")
@click.option("--tagger", required=True, help="Tagger from the registry: keras, tflite, asctool, birdnet (an unknown name is refused with the list).")
@click.option("--out", required=True, type=OUT_FILE, help="Tags file to write (HDF5).")
@click.option("--model", "model_path", type=INPUT_FILE, default=None, help="keras/tflite: the model file (sigmoid outputs).")
@click.option("--labels", "labels_path", type=INPUT_FILE, default=None, help="keras/tflite: the names of the model's outputs, one per line.")
@click.option("--layer", default=None, help="keras/tflite: a layer (tensor) to read instead of the model's output.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), default=None, help="asctool: the run folder of asctool train --task tagging.")
@click.option("--activation", type=click.Choice(["none", "sigmoid"]), default=None, help="keras/tflite: sigmoid for a model that outputs logits [default: none].")
@click.option("--pooling", type=click.Choice(["mean", "max"]), default=None, help="How a clip's windows become one tag vector [default: mean].")
@click.option("--tag-subset", type=INPUT_FILE, default=None, help="Keep only the tags named in FILE, one per line.")
@click.option("--sample-rate", type=int, default=None, help="keras/tflite: the model's input rate in Hz.")
@click.option("--window", type=float, default=None, help="keras/tflite: seconds of audio per window.")
@click.option("--hop", type=float, default=None, help="Seconds between windows [default: the window].")
@click.option("--nj", default=1, type=click.IntRange(min=1), help="Worker processes (the tags do not depend on it).")
@click.option("--batch-size", default=32, type=click.IntRange(min=1), help="Windows per model call.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def tag(manifest_path, tagger, out, model_path, labels_path, layer, run_dir, activation, pooling, tag_subset,
        sample_rate, window, hop, nj, batch_size, force) -> None:
    """Give every clip of a manifest a tag vector (the probability of each sound event).

    Writes TAGS.h5: tags (N, C) float32 in [0, 1], the tag names and the
    tagger's identity (name, options, weights SHA-256, pooling). See docs/tag.md.
    """
    from .stages.tag import run

    options = {"model": model_path, "labels": labels_path, "layer": layer, "run": run_dir,
               "activation": activation, "pooling": pooling, "tag_subset": tag_subset,
               "sample_rate": sample_rate, "window": window, "hop": hop}
    _echo_summary(run(manifest_path, out, tagger=tagger, options=options, nj=nj, batch_size=batch_size,
                      force=force))


@cli.command()
@click.argument("model", type=click.Choice(["openl3"]))
@click.option("--input-repr", type=click.Choice(["linear", "mel128", "mel256"]), default="mel256", help="openl3: front end of the weights.")
@click.option("--content-type", type=click.Choice(["music", "env"]), default="music", help="openl3: training content of the weights.")
@click.option("--out-dir", required=True, type=DIRECTORY, help="Folder for the weight file.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def download(model, input_repr, content_type, out_dir, force) -> None:
    """Download a pretrained model's published weights (only when asked; see docs/embed.md)."""
    from .stages.download import run

    _echo_summary(run(model, out_dir, input_repr=input_repr, content_type=content_type, force=force))


@cli.command()
@click.option("--train", "train_paths", required=True, multiple=True, type=INPUT_FILE, help="Training features (repeatable).")
@click.option("--model", "model_name", required=True, help="Model name from the registry (asctool models lists them; an unknown name is refused with the list).")
@click.option("--out-dir", required=True, type=DIRECTORY, help="Run folder.")
@click.option("--task", type=click.Choice(["scene", "tagging"]), default="scene", help="scene: one class per clip; tagging: an audio tagger from the features' event labels (docs/tag.md).")
@click.option("--labels", default="scene", help="scene, coarse (packaged 3-class map) or a TSV scene<TAB>label.")
@click.option("--valid", "valid_path", type=INPUT_FILE, default=None, help="Validation features (training side only).")
@click.option("--valid-split", type=click.FloatRange(0.0, 0.9), default=None, help="Hold out this fraction of training locations for validation (default: the profile's; 0: none).")
@click.option("--epochs", "--max-epochs", "epochs", type=click.IntRange(min=1), default=None, help="Epochs, the most with early stopping (default: the profile's).")
@click.option("--early-stopping/--no-early-stopping", default=None, help="Stop at a cycle end once validation stops improving (default: the profile's).")
@click.option("--patience", type=click.IntRange(min=0), default=None, help="Epochs without a better validation before early stopping (default: the profile's).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size (default: the profile's).")
@click.option("--profile", type=click.Choice(["paper", "demo", "cpu", "dcase2020-baseline"]), default="paper", help="Training profile (cpu: small data on a CPU, early stopping).")
@click.option("--width", type=click.FloatRange(min=0.01), default=None, help="Width multiplier (default: the profile's).")
@click.option("--option", "model_options", multiple=True, metavar="KEY=VALUE", help="Extra model option (e.g. base_filters=24).")
@click.option("--augment", default="auto", cls=_RegistryHelpOption, help_text=_batch_augment_help)
@click.option("--crop", type=click.IntRange(min=0), default=None, help="Random-crop length in frames (0: none; default 400 for 3-channel inputs longer than that).")
@click.option("--snapshots", type=click.IntRange(min=0), default=0, help="Average the weights of the last K cycle-end snapshots into model.keras.")
@click.option("--distribute", type=click.Choice(["none", "mirrored", "multiworker"]), default="none",
              help="tf.distribute strategy: mirrored (GPUs of this machine) or multiworker (TF_CONFIG or srun; docs/scaling.md).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out-dir.")
@click.option("--seed", default=0, type=click.IntRange(min=0), help="Random seed.")
@click.option("--force", is_flag=True, help="Start over in an existing run folder.")
@click.option("--classes", "classes_path", type=INPUT_FILE, default=None, help="The data set's own scenes, one per line (default: those featurize --classes recorded, else the DCASE scenes or coarse classes).")
@click.option("--unlabelled", "unlabelled_paths", multiple=True, type=INPUT_FILE, help="Features without scene labels (repeatable): target-device clips for --adversarial / --tri-training.")
@click.option("--adversarial", type=click.Choice(["whole", "time"]), default=None, help="Domain classifier behind a gradient reversal layer: on the pooled clip or every time frame.")
@click.option("--domain", type=click.Choice(["device", "source", "set"]), default="device", show_default=True, help="Domain labels: device, device a vs the rest, labelled vs unlabelled.")
@click.option("--grl-weight", type=click.FloatRange(min=0.0), default=1.0, show_default=True, help="Gradient reversal weight alpha.")
@click.option("--grl-ramp", is_flag=True, help="Raise alpha from 0 with the DANN ramp 2/(1+exp(-10p))-1.")
@click.option("--tri-training", is_flag=True, help="Train two labellers F1, F2 too (then asctool pseudo-label).")
@click.option("--orthogonality", type=click.FloatRange(min=0.0), default=1.0, show_default=True, help="Weight lambda of the labellers' orthogonality penalty.")
@click.option("--tags", "tags_path", type=INPUT_FILE, default=None, help="Tags file (asctool tag) of every training and validation clip, joined by id; with --tag-fusion.")
@click.option("--tag-fusion", default=None, help="codecat, concat, concat:K, attention:H,K or both:H,K[,shared|separate] (docs/tag_fusion.md).")
@click.option("--grid", is_flag=True, help="mlp on embeddings: choose learning rate x weight decay {1e-5,1e-4,1e-3}^2 on validation.")
def train(**kwargs) -> None:
    """Train a model on features files; writes RUN/model.keras and its history."""
    from .stages.train import run

    _echo_summary(run(**kwargs))


@cli.command()
@click.option("--model", "model_path", required=True, type=INPUT_FILE, help="RUN/model.keras, FILE.tflite or RUN/model.json (linear back-end).")
@click.option("--features", "features_path", required=True, type=INPUT_FILE, help="Features or embeddings file.")
@click.option("--out", required=True, type=OUT_FILE, help="Scores file to write.")
@click.option("--batch-size", default=64, type=click.IntRange(min=1), help="Clips per batch.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--tags", "tags_path", type=INPUT_FILE, default=None, help="Tags file of these clips (models trained with --tags; same tagger).")
@click.option("--backend", "backend_path", type=INPUT_FILE, default=None, help="SVM back-end on this model's codes (asctool backend svm).")
@click.option("--collapse", type=click.Choice(["sum", "mean", "max"]), default="sum", help="Embeddings: how a clip's frame probabilities become one row.")
def predict(**kwargs) -> None:
    """Score every clip of a features or embeddings file with a trained model."""
    from .stages.predict import run

    _echo_summary(run(**kwargs))


@cli.command()
@click.argument("kind", type=_RegistryChoice(_code_backends))
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path), help="Run folder or RUN/model.keras.")
@click.option("--train", "train_path", required=True, type=INPUT_FILE, help="Training features (the SVM is fitted on their codes).")
@click.option("--valid", "valid_path", required=True, type=INPUT_FILE, help="Validation features (choose C and gamma; calibrate).")
@click.option("--kernel", type=click.Choice(["rbf", "sigmoid"]), default="rbf", help="SVM kernel.")
@click.option("--out", required=True, type=OUT_FILE, help="Backend file to write (HDF5).")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def backend(**kwargs) -> None:
    """Fit a back-end (svm) on a trained model's codes (docs/tag_fusion.md; asctool models lists the back-ends)."""
    from .stages.backend import run

    _echo_summary(run(**kwargs))


@cli.command()
@click.argument("members", nargs=-1, required=True, type=INPUT_FILE)
@click.option("--out", required=True, type=OUT_FILE, help="Scores file to write.")
@click.option("--method", type=_RegistryChoice(_ensemble_methods), default="mean", help="How to combine (mean, logreg or another registered ensemble method).")
@click.option("--weights", default=None, help="Comma-separated member weights (weighted methods: mean).")
@click.option("--fit", "fit_paths", multiple=True, type=INPUT_FILE, help="Validation scores of each member, same order (fitted methods: logreg).")
@click.option("--labels", default=None, help="Map reference scenes to the class list: coarse or a TSV scene<TAB>label.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def ensemble(members, out, method, weights, fit_paths, labels, force) -> None:
    """Combine the scores of several models of one stage (joined by clip id)."""
    from .stages.ensemble import run

    _echo_summary(run(list(members), out, method=method, weights=weights, fit_paths=list(fit_paths), labels=labels,
                      force=force))


@cli.command()
@click.option("--fine", required=True, type=INPUT_FILE, help="Fine-class scores (any K classes).")
@click.option("--coarse", required=True, type=INPUT_FILE, help="Coarse-class scores of the same clips (any M classes, each a parent of fine ones).")
@click.option("--hierarchy", type=INPUT_FILE, default=None, help="TSV fine<TAB>coarse (default: the label map the coarse scores carry from training, else the packaged DCASE 2020 map).")
@click.option("--coarse-weight", type=click.FloatRange(min=0.0), default=None, show_default=False, help="Exponent w on the coarse scores  [default: 1.0]")
@click.option("--choose-weight-on", nargs=2, type=INPUT_FILE, default=None, metavar="VALID_FINE.h5 VALID_COARSE.h5",
              help="Choose the coarse weight on labelled validation scores of both stages.")
@click.option("--weight-grid", default="0,0.25,0.5,0.75,1,1.5,2,3", help="Comma-separated weights tried by --choose-weight-on.")
@click.option("--method", type=_RegistryChoice(_fusion_methods), default="two-stage", help="Fusion method (two-stage: the score product, or another registered fusion method).")
@click.option("--out", required=True, type=OUT_FILE, help="Scores file to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def fuse(fine, coarse, hierarchy, coarse_weight, choose_weight_on, weight_grid, method, out, force) -> None:
    """Two-stage fusion: p(fine) proportional to p_fine * p_coarse(parent)^w, joined by clip id."""
    from .stages.fuse import run

    _echo_summary(run(fine, coarse, out, method=method, hierarchy=hierarchy, coarse_weight=coarse_weight,
                      choose_weight_on=choose_weight_on or None, weight_grid=weight_grid, force=force))


@cli.command("pseudo-label")
@click.option("--model", "model", required=True, type=click.Path(exists=True, path_type=Path), help="Run folder trained with --tri-training (or its labellers.keras).")
@click.option("--features", "features_path", required=True, type=INPUT_FILE, help="Features of the unlabelled clips.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.5, show_default=True, help="Both labellers' probability of the agreed class must exceed it.")
@click.option("--out", required=True, type=OUT_FILE, help="Features file of the kept clips to write (scene = pseudo-label).")
@click.option("--batch-size", default=64, type=click.IntRange(min=1), help="Clips per batch.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def pseudo_label(model, features_path, threshold, out, batch_size, force) -> None:
    """Tri-training: label the clips on which the run's two labellers agree, both confidently."""
    from .stages.pseudo_label import run

    _echo_summary(run(model, features_path, out, threshold=threshold, batch_size=batch_size, force=force))


@cli.command()
@click.option("--model", "model_path", required=True, type=INPUT_FILE, help="RUN/model.keras.")
@click.option("--out", required=True, type=OUT_FILE, help=".tflite file to write.")
@click.option("--mode", type=click.Choice(["dynamic", "float16", "int8"]), default="dynamic", help="Quantisation mode.")
@click.option("--calibration", type=INPUT_FILE, default=None, help="Features for int8 calibration.")
@click.option("--max-bytes", type=click.IntRange(min=1), default=None, help="Fail (writing nothing) when the file is larger.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def quantize(model_path, out, mode, calibration, max_bytes, force) -> None:
    """TensorFlow Lite post-training quantisation; writes FILE.tflite and size.json."""
    from .stages.quantize import run

    _echo_summary(run(model_path, out, mode=mode, calibration=calibration, max_bytes=max_bytes, force=force))


@cli.command()
@click.argument("scores_path", type=INPUT_FILE)
@click.option("--json", "json_path", type=OUT_FILE, default=None, help="Write the full report as JSON.")
@click.option("--submission", type=OUT_FILE, default=None, help="Write a DCASE submission file.")
@click.option("--groups", type=INPUT_FILE, default=None, help="YAML of device groups (default: DCASE 2020 groups).")
@click.option("--labels", default=None, help="Map the reference scenes before scoring: coarse or a TSV scene<TAB>label (default: the map the scores carry from training, if any).")
@click.option("--plot", type=OUT_FILE, default=None, help="Write a confusion-matrix PNG.")
@click.option("--force", is_flag=True, help="Overwrite existing --json, --submission and --plot files.")
@click.option("--manifest", type=INPUT_FILE, default=None, help="The manifest the scores were made from: the submission lists its file names (default: audio/ID.wav); for a tags file, the reference events (its tags column).")
def score(scores_path, json_path, submission, groups, labels, plot, force, manifest) -> None:
    """Metrics of a scores file (accuracy per device, group and class, log loss, confusion) or of a tags file (mAP, per-tag AUC)."""
    from .scoring import format_report
    from .stages.score import run

    report = run(scores_path, json_path=json_path, submission=submission, groups=groups, labels=labels, plot=plot,
                 force=force, manifest=manifest)
    if report.get("task") == "tagging":  # a tags file: mAP and per-tag AUC against --manifest's tags column
        from .tagging.metrics import format_tagging_report

        click.echo(format_tagging_report(report))
        return
    click.echo(format_report(report))


@cli.command()
@click.option("--model", "model_paths", required=True, multiple=True, type=INPUT_FILE, help="RUN/model.keras (repeat: coarse then fine).")
@click.option("--features", "features_path", required=True, type=INPUT_FILE, help="Features file.")
@click.option("--ids", required=True, help="Comma-separated clip ids.")
@click.option("--out-dir", required=True, type=DIRECTORY, help="Folder for the PNGs.")
@click.option("--min-freq-bins", default=8, type=click.IntRange(min=1), help="Warn about models whose features_out map has fewer frequency bins (error if all have).")
@click.option("--force", is_flag=True, help="Overwrite existing PNGs.")
def cam(model_paths, features_path, ids, out_dir, min_freq_bins, force) -> None:
    """Class activation maps of chosen clips, one PNG per clip."""
    from .stages.cam import run

    _echo_summary(run(list(model_paths), features_path, [i for i in ids.split(",") if i], out_dir,
                      min_freq_bins=min_freq_bins, force=force))


@cli.command()
@click.argument("path", type=INPUT_FILE)
def inspect(path: Path) -> None:
    """Describe an artifact: kind, shapes, config, provenance, counts."""
    from .stages.inspect import run

    click.echo(run(path))


@cli.command()
@click.option("--classes", default=10, type=click.IntRange(min=2), help="Number of classes.")
@click.option("--input", "input_shape", default="128x423x3", callback=_parse_shape,
              help="Input shape FREQxTIMExCHANNELS.")
def models(classes: int, input_shape: tuple[int, ...]) -> None:
    """List the model registry with parameter counts, then the back-ends (logreg, svm)."""
    from .stages.models import run

    click.echo(run(num_classes=classes, input_shape=input_shape))


@cli.command()
@click.option("--manifest", "manifest_path", required=True, type=INPUT_FILE, help="Training manifest (TSV) to split.")
@click.option("--out-train", required=True, type=OUT_FILE, help="Manifest of the clips kept for training.")
@click.option("--out-valid", required=True, type=OUT_FILE, help="Manifest of the validation clips (held-out locations).")
@click.option("--valid-split", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.1, help="Fraction of each class's recording locations held out.")
@click.option("--labels", default="scene", help="Classes the split is made by, as in asctool train: scene, coarse or a TSV scene<TAB>label.")
@click.option("--seed", default=0, type=click.IntRange(min=0), help="Random seed; the same draw as asctool train --valid-split with this seed.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--classes", "classes_path", type=INPUT_FILE, default=None, help=_CLASSES_HELP)
@click.option("--group-column", default=None, help="Hold out whole groups of this manifest column (e.g. a source recording) instead of locations; without either, the split is stratified by class.")
def split(manifest_path, out_train, out_valid, valid_split, labels, seed, force, classes_path, group_column) -> None:
    """Hold out whole recording locations of a manifest for validation (train/valid manifests)."""
    from .stages.split import run

    _echo_summary(run(manifest_path, out_train, out_valid, valid_split=valid_split, labels=labels, seed=seed,
                      force=force, classes_path=classes_path, group_column=group_column))


@cli.command()
@click.argument("reports", nargs=-1, required=True, metavar="NAME=REPORT.json...")
@click.option("--out", required=True, type=OUT_FILE, help="Markdown file to write (RESULTS.md).")
@click.option("--title", default="Results", help="Title of the table.")
@click.option("--fusion-summary", type=INPUT_FILE, default=None, help="JSON printed by asctool fuse: adds the oracle-gating line (skipped if missing).")
@click.option("--size", "sizes", multiple=True, metavar="NAME=size.json", help="Size of a quantised model (repeatable): a size column and the total.")
@click.option("--budget-kb", type=click.FloatRange(min=0.0, min_open=True), default=None, help="With --size: compare the total with this budget (KB of 1024 bytes).")
@click.option("--size-rule", type=click.Choice(["dcase", "file"]), default="dcase", help="With --size: count parameters x bits (dcase) or the .tflite bytes (file).")
@click.option("--published", type=click.Choice(["1a", "1b", "dcase2020-baseline", "jung2020", "none"]), default="none", help="Close with the published figures of this DCASE 2020 task (or its baseline).")
@click.option("--folds", default=None, metavar="K1,K2,...", help="Cross-validation: each REPORT path holds {fold}, read for every fold; the table gives mean ± std over the folds.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out.")
def results(reports, out, title, fusion_summary, sizes, budget_kb, size_rule, published, folds, force) -> None:
    """Write a recipe's results table from asctool score --json reports (one row each, in order)."""
    from .stages.results import run

    _echo_summary(run(list(reports), out, title=title, fusion_summary=fusion_summary, sizes=list(sizes),
                      published=None if published == "none" else published, budget_kb=budget_kb,
                      size_rule=size_rule, folds=folds, force=force))


@cli.command("check-size")
@click.argument("size_paths", nargs=-1, required=True, type=INPUT_FILE, metavar="SIZE.json...")
@click.option("--budget-kb", required=True, type=click.FloatRange(min=0.0, min_open=True), help="Budget of the models together, in KB of 1024 bytes.")
@click.option("--size-rule", "rule", type=click.Choice(["dcase", "file"]), default="dcase", help="dcase: parameters x the bits of the mode (the DCASE 2020 rule); file: the .tflite bytes (the same option as asctool results).")
def check_size(size_paths, budget_kb, rule) -> None:
    """Check that quantised models fit a size budget together (exit 1 when over)."""
    from .reporting import format_size_budget
    from .stages.check_size import run

    click.echo(format_size_budget(run(list(size_paths), budget_kb=budget_kb, rule=rule)))


def _on_signal(signum: int, frame) -> None:
    """Turn the first SIGINT, SIGTERM or SIGHUP into :class:`asctool.io.Interrupted` in the main thread.

    Raised at once, or after the HDF5 call in progress (:func:`asctool.io.interrupts_deferred`).
    """
    first = interrupted()
    if first is not None:  # the stage is cleaning up after the first one
        log.warning("still cleaning up after %s; kill -9 stops at once (leaving temporary files)",
                    signal.Signals(first).name)
        return
    interrupt(signum)


def _end_by_signal(signum: int) -> None:
    """End this process by ``signum`` with its default action, as Python does after Ctrl-C.

    So a calling shell sees the signal (status 128 + N), and a script
    interrupted by Ctrl-C stops instead of going on with its next command.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    sys.exit(128 + signum)  # not reached where the signal's default action ends the process


def main() -> None:
    """Console-script entry point: the CLI with SIGINT, SIGTERM and SIGHUP as interrupts."""
    for name in _INTERRUPTS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _on_signal)
    try:
        cli(prog_name="asctool")
    except SystemExit:
        if interrupted() is not None:
            _end_by_signal(interrupted())
        raise


if __name__ == "__main__":
    main()
