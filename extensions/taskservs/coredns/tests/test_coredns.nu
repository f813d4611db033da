# Tests of the coredns scripts' pure helpers: `nu tests/test_coredns.nu`
use std/assert
use ../scripts/install.nu [apply-steps]
use ../scripts/configure.nu [corefile]
use ../scripts/check.nu [replica-status dig-args]
use ../scripts/uninstall.nu [objects]

def "test corefile" [] {
    let s = {cluster_domain: "cluster.local", upstream_servers: ["1.1.1.1" "9.9.9.9"], cache_ttl: 30, stub_domains: [{domain: "corp.internal", servers: ["10.1.0.53"]}]}
    let text = (corefile $s)
    assert str contains $text "kubernetes cluster.local in-addr.arpa ip6.arpa {"
    assert str contains $text "forward . 1.1.1.1 9.9.9.9 {"
    assert str contains $text "corp.internal:53 {"
    assert str contains $text "forward . 10.1.0.53"
}

def "test kubectl steps" [] {
    assert equal (apply-steps "/c.yaml" "kube-system" | first) ["kubectl" "apply" "--namespace" "kube-system" "-f" "/c.yaml"]
    assert equal (objects "kube-system" | length) 5
}

def "test check helpers" [] {
    assert equal (replica-status {spec: {replicas: 2}, status: {readyReplicas: 1}}) {ready: 1, desired: 2}
    assert equal (replica-status {spec: {replicas: 2}, status: {}}) {ready: 0, desired: 2}
    assert equal (dig-args "10.96.0.10" "cluster.local" | last) "kubernetes.default.svc.cluster.local"
}

def main [] {
    test corefile
    test kubectl steps
    test check helpers
    print "coredns: 3 tests passed"
}
