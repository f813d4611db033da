"""Advice worded once: the library's errors carry data, ``advice.explain`` says how to fix them."""

from __future__ import annotations

import errno

from provisioning.advice import explain
from provisioning.errors import AuthError, NotFound, ProvisioningError, RegistryError, UsageError


def test_a_registry_error_gets_the_advice_of_its_kind() -> None:
    err = AuthError(
        "reg.example requires authentication to pull from repository a/b (401)",
        host="reg.example",
        kind="login_required",
    )
    text, code = explain(err)
    assert text == (
        "reg.example requires authentication to pull from repository a/b (401); run `provisioning oci login "
        "reg.example` (docker and podman logins are honoured too)"
    )
    assert code == 1


def test_advice_names_the_flags_only_at_the_boundary() -> None:
    err = RegistryError("the TLS certificate of reg.example is not trusted", host="reg.example", kind="tls_untrusted")
    assert "--" not in str(err)
    text, _ = explain(err)
    assert text.startswith("the TLS certificate of reg.example is not trusted: pass the registry's CA certificate")
    assert "--ca-file" in text and "--insecure" in text and "not --plain-http" in text


def test_an_error_wrapping_a_registry_error_keeps_its_advice() -> None:
    refused = "cannot connect to reg.example (connection refused)"
    inner = RegistryError(refused, host="reg.example", kind="connection_refused")
    try:
        try:
            raise inner
        except RegistryError as exc:
            raise ProvisioningError(f"resolving redis failed: {exc}.") from None
    except ProvisioningError as outer:
        text, code = explain(outer)
    assert text == (
        "resolving redis failed: cannot connect to reg.example (connection refused); is the registry running? "
        "(`provisioning oci-registry status` for the local one)"
    )
    assert code == 1


def test_advice_is_not_repeated_and_kinds_without_words_add_none() -> None:
    err = RegistryError("reg.example failed on GET /v2/ with 503", host="reg.example", kind="server_error")
    assert explain(err) == (str(err), 1)
    missing = NotFound(
        "reg.example/ns/redis:9.9.9 not found", host="reg.example", repository="ns/redis", kind="manifest_not_found"
    )
    once = explain(missing)[0]
    assert once.endswith("(`provisioning oci tags ns/redis` lists the versions)")
    try:
        try:
            raise missing
        except NotFound:
            raise NotFound(once) from None
    except NotFound as again:
        assert explain(again)[0].count("lists the versions") == 1


def test_exit_codes_and_what_is_not_ours() -> None:
    assert explain(UsageError("give a name")) == ("give a name", 2)
    full = OSError(errno.ENOSPC, "No space left on device", "/tmp/x")
    text, code = explain(full)
    assert code == 1 and "No space left on device (/tmp/x)" in text
    assert explain(OSError(errno.ENOENT, "No such file")) is None  # a bug: the caller lets it raise
    assert explain(KeyError("x")) is None
