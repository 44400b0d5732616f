"""Recipients' webhooks in the catalogue: http(s) only, secret by environment variable name,
kept out of what the catalogue shows (dumps, snapshots)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from consentry.domain.catalogue import Catalogue


def _with_hook(catalogue: Catalogue, hook: dict[str, Any]) -> Catalogue:
    data = catalogue.model_dump(mode="json")
    data["recipients"]["adnet"]["webhook"] = hook
    return Catalogue.model_validate(data)


def test_a_recipient_may_declare_a_webhook(mini_catalogue: Catalogue) -> None:
    hooked = _with_hook(
        mini_catalogue, {"url": "https://adnet.example.org/opt-out", "secret_env": "ADNET_SECRET"}
    )
    hook = hooked.recipients["adnet"].webhook
    assert hook is not None and str(hook.url) == "https://adnet.example.org/opt-out"
    assert mini_catalogue.recipients["adnet"].webhook is None


@pytest.mark.parametrize(
    "hook",
    [
        {"url": "ftp://adnet.example.org/opt-out", "secret_env": "ADNET_SECRET"},
        {"url": "not a url", "secret_env": "ADNET_SECRET"},
        {"url": "https://adnet.example.org/", "secret_env": "lower-case"},
        {"url": "https://adnet.example.org/", "secret": "inline-secrets-are-refused"},
    ],
)
def test_a_webhook_needs_an_http_url_and_a_secret_variable_name(
    mini_catalogue: Catalogue, hook: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        _with_hook(mini_catalogue, hook)


def test_webhooks_are_not_part_of_the_catalogue_shown_to_clients(
    mini_catalogue: Catalogue,
) -> None:
    hooked = _with_hook(
        mini_catalogue, {"url": "https://adnet.example.org/opt-out", "secret_env": "ADNET_SECRET"}
    )
    assert "webhook" not in hooked.model_dump(mode="json")["recipients"]["adnet"]
