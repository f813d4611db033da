import requests


def test_registry_fixture_serves_distribution_api(registry):
    r = requests.get(f"{registry.url}/v2/", timeout=5)
    assert r.status_code == 200
    assert r.headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    assert registry.host.startswith("127.0.0.1:")
