"""botocore's service models loaded and built once per process, for every client of every rehearsal.

moto resets boto3's default session for each rehearsal, so every rehearsal's clients (the harness
seeding the world, every emulated function starting with fresh clients) began with a new botocore
Loader that decoded each service's JSON again, and each client built a new ServiceModel with an
OperationModel per operation (EC2 has hundreds): over half of a rehearsal's start. The files do
not change while the process runs, and botocore hands one loaded object to every client of a
session and caches what it derives on the ServiceModel, so both are read-only to it; sharing them
across sessions changes nothing a client does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from botocore.client import ClientCreator
from botocore.loaders import Loader
from botocore.model import ServiceModel

_ORIGINAL_LOAD_SERVICE_MODEL = Loader.load_service_model
_ORIGINAL_LOAD_DATA = Loader.load_data
_LOADED: dict[tuple[Any, ...], Any] = {}
_MODELS: dict[tuple[str, str | None], ServiceModel] = {}


def _search_paths(loader: Loader) -> tuple[str, ...]:
    return tuple(loader.search_paths)


def _load_service_model(self: Loader, service_name: str, type_name: str, api_version: str | None = None) -> Any:
    key = ("service", _search_paths(self), service_name, type_name, api_version)
    if key not in _LOADED:
        _LOADED[key] = _ORIGINAL_LOAD_SERVICE_MODEL(self, service_name, type_name, api_version)
    return _LOADED[key]


def _load_data(self: Loader, name: str) -> Any:
    key = ("data", _search_paths(self), name)
    if key not in _LOADED:
        _LOADED[key] = _ORIGINAL_LOAD_DATA(self, name)
    return _LOADED[key]


def _service_model(self: ClientCreator, service_name: str, api_version: str | None = None) -> ServiceModel:
    json_model = self._loader.load_service_model(service_name, "service-2", api_version=api_version)  # type: ignore[attr-defined]
    model = _MODELS.get((service_name, api_version))
    if model is None or model._service_description is not json_model:  # type: ignore[attr-defined]
        model = _MODELS[(service_name, api_version)] = ServiceModel(json_model, service_name=service_name)
    return model


@contextlib.contextmanager
def installed() -> Iterator[None]:
    with (
        mock.patch.object(Loader, "load_service_model", _load_service_model),
        mock.patch.object(Loader, "load_data", _load_data),
        mock.patch.object(ClientCreator, "_load_service_model", _service_model),
    ):
        yield
