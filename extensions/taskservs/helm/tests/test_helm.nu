# Tests of the helm scripts' pure helpers: `nu tests/test_helm.nu`
use std/assert
use ../scripts/install.nu [normalize-arch release]
use ../scripts/configure.nu [source-command]
use ../scripts/check.nu [parse-version version-at-least]
use ../scripts/uninstall.nu [paths-to-remove]

def "test release" [] {
    let rel = (release "3.13.0" "linux" (normalize-arch "aarch64"))
    assert equal $rel.url "https://get.helm.sh/helm-v3.13.0-linux-arm64.tar.gz"
    assert equal $rel.folder "linux-arm64"
}

def "test source-command" [] {
    assert equal (source-command {name: "workspace", url: "oci://localhost:5000/charts"}) ["helm" "registry" "login" "localhost:5000" "--password-stdin"]
    assert equal (source-command {name: "stable", url: "https://charts.example.com"} | first 3) ["helm" "repo" "add"]
}

def "test versions" [] {
    assert equal (parse-version "v3.13.0+g825e86f") "3.13.0"
    assert (version-at-least "3.13.0" "3.10.0")
    assert not (version-at-least "3.9.4" "3.10.0")
    assert equal (paths-to-remove "/usr/local") ["/usr/local/bin/helm"]
}

def main [] {
    test release
    test source-command
    test versions
    print "helm: 3 tests passed"
}
