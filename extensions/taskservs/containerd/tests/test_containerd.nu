# Tests of the containerd scripts' pure helpers: `nu tests/test_containerd.nu`
use std/assert
use ../scripts/install.nu [normalize-arch release-urls host-settings]
use ../scripts/configure.nu [default-settings build-config]
use ../scripts/check.nu [parse-version version-at-least]
use ../scripts/uninstall.nu [paths-to-remove]

def "test release-urls" [] {
    let urls = (release-urls "1.7.0" "1.1.9" "1.3.0" (normalize-arch "aarch64"))
    assert ($urls.containerd | str ends-with "/v1.7.0/containerd-1.7.0-linux-arm64.tar.gz")
    assert ($urls.runc | str ends-with "/v1.1.9/runc.arm64")
    assert ($urls.cni | str ends-with "cni-plugins-linux-arm64-v1.3.0.tgz")
    assert ("br_netfilter" in (host-settings).modules)
}

def "test config" [] {
    let mirror = {host: "images.example.com", endpoints: ["https://mirror.internal"]}
    let cfg = (build-config ((default-settings) | merge {mirrors: [$mirror]}))
    let cri = ($cfg.plugins | get "io.containerd.grpc.v1.cri")
    assert equal $cfg.version 2
    assert equal $cri.containerd.runtimes.runc.options.SystemdCgroup true
    assert equal ($cri.registry.mirrors | get "images.example.com" | get endpoint) ["https://mirror.internal"]
    assert str contains ($cfg | to toml) "sandbox_image"
}

def "test versions" [] {
    assert equal (parse-version "containerd github.com/containerd/containerd v1.7.0 1fbd70374134b891f97ce19c70b6e50c7b9f4e0d") "1.7.0"
    assert (version-at-least "1.7.2" "1.7.0")
    assert not (version-at-least "1.6.24" "1.7.0")
}

def "test uninstall paths" [] {
    assert ("/usr/local/sbin/runc" in (paths-to-remove))
    assert not ("/var/lib/containerd" in (paths-to-remove))
    assert ("/var/lib/containerd" in (paths-to-remove --purge))
}

def main [] {
    test release-urls
    test config
    test versions
    test uninstall paths
    print "containerd: 4 tests passed"
}
