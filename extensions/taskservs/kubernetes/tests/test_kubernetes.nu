# Tests of the kubernetes scripts' pure helpers: `nu tests/test_kubernetes.nu`
use std/assert
use ../scripts/install.nu [normalize-arch binary-url preflight-steps]
use ../scripts/configure.nu [kubeadm-command skip-phases kubeconfig-target]
use ../scripts/check.nu [parse-version not-ready]
use ../scripts/uninstall.nu [paths-to-remove]

def "test install helpers" [] {
    assert equal (binary-url "1.28.0" (normalize-arch "x86_64") "kubeadm") "https://dl.k8s.io/release/v1.28.0/bin/linux/amd64/kubeadm"
    assert equal (preflight-steps | first) ["swapoff" "-a"]
}

def "test kubeadm-command" [] {
    assert equal (kubeadm-command "controlplane" true "/k.yaml") ["kubeadm" "init" "--config" "/k.yaml" "--upload-certs"]
    assert equal (kubeadm-command "controlplane" false "/k.yaml" | last) "--control-plane"
    assert equal (kubeadm-command "worker" false "/k.yaml") ["kubeadm" "join" "--config" "/k.yaml"]
    assert error { kubeadm-command "etcd" false "/k.yaml" }
    assert equal (skip-phases false) ["--skip-phases=addon/kube-proxy"]
    assert equal (kubeconfig-target "/home/ops") "/home/ops/.kube/config"
}

def "test check helpers" [] {
    let ver = ({clientVersion: {gitVersion: "v1.28.0"}, serverVersion: {gitVersion: "v1.28.2"}} | to json)
    assert equal (parse-version $ver "server") "1.28.2"
    assert equal (parse-version "not json" "client") ""
    let nodes = ({items: [
        {metadata: {name: "cp-1"}, status: {conditions: [{type: "Ready", status: "True"}]}}
        {metadata: {name: "w-1"}, status: {conditions: [{type: "Ready", status: "False"}]}}
    ]} | to json)
    assert equal (not-ready $nodes) ["w-1"]
}

def "test uninstall" [] {
    assert not ("/etc/kubernetes" in (paths-to-remove))
    assert ("/etc/kubernetes" in (paths-to-remove --purge))
}

def main [] {
    test install helpers
    test kubeadm-command
    test check helpers
    test uninstall
    print "kubernetes: 4 tests passed"
}
