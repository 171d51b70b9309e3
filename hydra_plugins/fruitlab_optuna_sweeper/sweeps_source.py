"""The `sweep` config group: the YAML files of the repository's top-level sweeps/ folder, so that a named
sweep runs as `python -m fruitlab -m sweep=optim_lr`. A config source shows the folder as that one group."""

import importlib.util
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

GROUP = "sweep"
SCHEME = "fruitlab-sweeps"


def sweeps_folder() -> Path:
    """sweeps/ beside the fruitlab package, as conf/ is."""
    return Path(importlib.util.find_spec("fruitlab").origin).resolve().parents[1] / "sweeps"


class SweepsConfigSource(ConfigSource):
    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _file(self, config_path: str) -> Path | None:
        """`sweep/optim_lr` -> <folder>/optim_lr.yaml; None outside the group."""
        if not config_path.startswith(f"{GROUP}/"):
            return None
        return Path(self.path) / self._normalize_file_name(config_path[len(GROUP) + 1 :])

    def load_config(self, config_path: str) -> ConfigResult:
        file = self._file(config_path)
        if file is None or not file.is_file():
            raise ConfigLoadError(f"Config not found : {config_path}")
        text = file.read_text(encoding="utf-8")
        return ConfigResult(
            config=OmegaConf.create(text),
            path=self.full_path(),
            provider=self.provider,
            header=self._get_header_dict(text[:512]),
        )

    def available(self) -> bool:
        return Path(self.path).is_dir()

    def is_group(self, config_path: str) -> bool:
        return config_path in ("", GROUP)

    def is_config(self, config_path: str) -> bool:
        file = self._file(config_path)
        return file is not None and file.is_file()

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if config_path == "" and results_filter in (None, ObjectType.GROUP):
            return [GROUP]
        if config_path == GROUP and results_filter in (None, ObjectType.CONFIG):
            return sorted(file.stem for file in Path(self.path).glob("*.yaml"))
        return []


class SweepsSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        folder = sweeps_folder()
        if folder.is_dir():
            search_path.append(provider="fruitlab-sweeps", path=f"{SCHEME}://{folder}")
