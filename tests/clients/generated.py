"""A Python client generated from the served OpenAPI schema with openapi-python-client.

The generator names modules after operationIds and folders after tags, both of
which the schema may rename; the journeys find an operation by what the engine
contract fixes instead, its method and path (``client.op("POST",
"/api/v1/recommendations")``), read from each generated module's request.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
# Binary answers (image renditions, reference PDFs) are the only parts the
# generator may leave out; any other warning is a schema the clients cannot use.
BINARY_PATHS = ("/api/v1/images/{id}/{rendition}", "/api/v1/references/{id}/pdf")
_REQUEST = re.compile(r'"method": "(\w+)",\s*"url": "([^"]+)"')
_JSON_BODY = re.compile(r'isinstance\(body, (\w+)\):\s*(?:if [^\n]*\s*)?_kwargs\["json"\]')
_WARNING = re.compile(r"^WARNING parsing (\w+) (\S+) ", re.MULTILINE)


@dataclass
class GeneratedClient:
    package: ModuleType
    modules: list[str]
    operations: dict[tuple[str, str], ModuleType]
    warnings: list[tuple[str, str]]

    def op(self, method: str, path: str) -> ModuleType:
        try:
            return self.operations[(method.upper(), path)]
        except KeyError:
            raise AssertionError(f"the generated client has no {method} {path}") from None

    def client(self, base_url: str, token: str | None = None):
        kwargs = {"base_url": base_url, "raise_on_unexpected_status": True, "timeout": 60.0}
        if token is None:
            return self.package.Client(**kwargs)
        return self.package.AuthenticatedClient(token=token, prefix="Token", **kwargs)

    def call(self, client, method: str, path: str, body: dict | None = None, **params):
        """Call one operation through its generated ``sync_detailed``.

        ``body`` is a plain dict turned into the operation's generated request
        model with ``from_dict``, so the model's own serialisation is what is sent.
        """
        module = self.op(method, path)
        if body is not None:
            params["body"] = body_model(module).from_dict(body)
        return module.sync_detailed(client=client, **params)


def body_model(module: ModuleType):
    """The generated request model an operation sends as JSON (its ``body``)."""
    hints = typing.get_type_hints(module._get_kwargs)
    candidates = {
        t.__name__: t
        for t in typing.get_args(hints["body"]) or (hints["body"],)
        if hasattr(t, "from_dict")
    }
    if len(candidates) > 1:  # JSON beside multipart (a file may be sent): take JSON's
        found = _JSON_BODY.search(Path(module.__file__ or "").read_text())
        assert found, f"{module.__name__}: no JSON body among {list(candidates)}"
        return candidates[found.group(1)]
    assert len(candidates) == 1, f"{module.__name__}: body types {list(candidates)}"
    return next(iter(candidates.values()))


def generate(schema_path: Path, workdir: Path, package: str) -> GeneratedClient:
    """Generate the client into ``workdir/package``, import every module of it, map it."""
    config = workdir / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no ruff formatting of the output: not needed
    out = workdir / package
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(schema_path),
            "--output-path",
            str(out),
            "--meta",
            "none",
            "--config",
            str(config),
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    warnings = [(m, p) for m, p in _WARNING.findall(log)]
    sys.path.insert(0, str(workdir))
    try:
        root = importlib.import_module(package)
        names = [package]
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)
            names.append(info.name)
    finally:
        sys.path.remove(str(workdir))
    operations: dict[tuple[str, str], ModuleType] = {}
    for name in names:
        if not name.startswith(f"{package}.api.") or name.count(".") < 3:
            continue
        module = sys.modules[name]
        found = _REQUEST.search(Path(module.__file__ or "").read_text())
        assert found, f"{name}: no request in the generated module"
        key = (found.group(1).upper(), found.group(2))
        assert key not in operations, f"two generated functions for {key}"
        operations[key] = module
    return GeneratedClient(root, names, operations, warnings)


def unload(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
        del sys.modules[name]


def as_dict(value: Any) -> Any:
    """A parsed generated model back as plain data (for assertions)."""
    return value.to_dict() if hasattr(value, "to_dict") else value
