# Tests of the etcd scripts' pure helpers: `nu tests/test_etcd.nu`
use std/assert
use ../scripts/install.nu [normalize-arch release]
use ../scripts/configure.nu [initial-cluster build-config]
use ../scripts/check.nu [parse-version etcdctl-flags]
use ../scripts/uninstall.nu [paths-to-remove]

const MEMBERS = [{name: "etcd-0", ip: "10.0.0.10"} {name: "etcd-1", ip: "10.0.0.11"} {name: "etcd-2", ip: "10.0.0.12"}]

def "test release" [] {
    let rel = (release "3.5.9" (normalize-arch "x86_64"))
    assert equal $rel.folder "etcd-v3.5.9-linux-amd64"
    assert ($rel.url | str ends-with "/v3.5.9/etcd-v3.5.9-linux-amd64.tar.gz")
}

def "test config" [] {
    assert equal (initial-cluster ($MEMBERS | first 1) 2380 false) "etcd-0=http://10.0.0.10:2380"
    let cfg = (build-config {
        member_name: "etcd-1", members: $MEMBERS, data_dir: "/var/lib/etcd", cert_dir: "/etc/etcd/pki",
        client_port: 2379, peer_port: 2380, tls: true, initial_cluster_state: "new",
        initial_cluster_token: "t", quota_backend_bytes_mb: 8192, auto_compaction_retention: "8h", snapshot_count: 10000
    })
    assert equal $cfg.name "etcd-1"
    assert equal $cfg.advertise-client-urls "https://10.0.0.11:2379"
    assert str contains $cfg.initial-cluster "etcd-2=https://10.0.0.12:2380"
    assert equal $cfg.quota-backend-bytes 8589934592
    assert equal $cfg.peer-transport-security.client-cert-auth true
}

def "test check helpers" [] {
    assert equal (parse-version "etcdctl version: 3.5.9\nAPI version: 3.5") "3.5.9"
    assert equal (etcdctl-flags "http://127.0.0.1:2379" "/pki" false) ["--endpoints" "http://127.0.0.1:2379"]
    assert equal (etcdctl-flags "https://127.0.0.1:2379" "/pki" true | length) 8
}

def "test uninstall keeps data" [] {
    assert not ("/var/lib/etcd" in (paths-to-remove "/var/lib/etcd"))
    assert ("/var/lib/etcd" in (paths-to-remove "/var/lib/etcd" --purge))
}

def main [] {
    test release
    test config
    test check helpers
    test uninstall keeps data
    print "etcd: 4 tests passed"
}
