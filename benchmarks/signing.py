"""Sign and verify N artifacts in a loopback registry: our library and the cosign CLI side by side.

    python benchmarks/signing.py [--count 20]

Pushes N small artifacts to a fresh docker-registry, then times: signing all of them with our
library (key decrypted once), re-signing them (already signed: nothing written), verifying them,
and the same signing and verifying with `cosign sign --key … --tlog-upload=false` and `cosign
verify --key … --insecure-ignore-tlog=true` (one process per artifact, as a CI script runs it).
Requests are counted from the registry's access log. Needs cosign on PATH (`bash .ci/go-tools`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from registry_server import RegistryServer  # noqa: E402
from test_layout import make_artifact  # noqa: E402

from provisioning.oci.open import open_storage  # noqa: E402
from provisioning.signing.keys import load_private_key, load_public_key, write_key_pair  # noqa: E402
from provisioning.signing.sign import sign_artifact  # noqa: E402
from provisioning.signing.verify import verify_artifact  # noqa: E402
from tools import put_tools_on_path  # noqa: E402


class Logged(RegistryServer):
    def config(self) -> dict:
        cfg = super().config()
        cfg["log"] = {"level": "error", "accesslog": {"disabled": False}}
        return cfg

    def requests(self) -> int:
        return len(re.findall(r'"(?:GET|HEAD|PUT|POST|PATCH|DELETE) /v2/', (self.root / "registry.log").read_text()))


def timed(label: str, server: Logged, count: int, fn) -> None:
    before, started = server.requests(), time.perf_counter()
    fn()
    seconds, spent = time.perf_counter() - started, server.requests() - before
    print(f"{label:<44} {seconds:7.2f} s  {seconds / count * 1000:7.1f} ms/artifact  {spent / count:5.1f} req/artifact")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    put_tools_on_path()
    cosign = shutil.which("cosign")
    work = Path(tempfile.mkdtemp(prefix="bench-signing-"))
    os.environ["COSIGN_PASSWORD"] = "bench"
    try:
        started = time.perf_counter()
        key_path, pub_path = write_key_pair(work / "k", b"bench")
        print(f"{'keygen (scrypt N=2^16, then writes)':<44} {time.perf_counter() - started:7.2f} s")
        started = time.perf_counter()
        key = load_private_key(key_path, b"bench")
        print(f"{'load the private key (scrypt)':<44} {time.perf_counter() - started:7.2f} s")
        pub = load_public_key(pub_path)
        with Logged(work / "registry") as server:
            storage = open_storage(server.host, plain_http=True)
            subjects = []
            for i in range(args.count):
                for ns in ("ours", "cosign"):
                    art = make_artifact(name=f"ext{i}", payload=f"{ns}{i}".encode())
                    target = storage.repository(f"{ns}/ext{i}")
                    art.push(target, "1.0.0")
                    if ns == "ours":
                        subjects.append((target, art.manifest, f"{server.host}/{ns}/ext{i}"))
            n = args.count
            timed("ours: sign", server, n, lambda: [sign_artifact(t, d, key, r) for t, d, r in subjects])
            timed(
                "ours: sign again (already signed)",
                server,
                n,
                lambda: [sign_artifact(t, d, key, r) for t, d, r in subjects],
            )
            timed("ours: verify", server, n, lambda: [verify_artifact(t, d, [pub]) for t, d, _ in subjects])
            if cosign is None:
                print("cosign not on PATH: run `bash .ci/go-tools` for the side-by-side figures")
                return
            env = {**os.environ, "HOME": str(work)}
            refs = [f"{server.host}/cosign/ext{i}:1.0.0" for i in range(n)]

            def run(*argv: str) -> None:
                subprocess.run(argv, check=True, capture_output=True, env=env)

            timed(
                "cosign: sign --tlog-upload=false",
                server,
                n,
                lambda: [run(cosign, "sign", "--key", str(key_path), "--tlog-upload=false", "-y", r) for r in refs],
            )
            timed(
                "cosign: verify --insecure-ignore-tlog",
                server,
                n,
                lambda: [run(cosign, "verify", "--key", str(pub_path), "--insecure-ignore-tlog=true", r) for r in refs],
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
