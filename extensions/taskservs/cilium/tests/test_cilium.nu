# Tests of the cilium scripts' pure helpers: `nu tests/test_cilium.nu`
use std/assert
use ../scripts/install.nu [normalize-arch cli-url helm-args]
use ../scripts/configure.nu [helm-values]
use ../scripts/check.nu [unhealthy]
use ../scripts/uninstall.nu [uninstall-args]

const SETTINGS = {
    ipam_mode: "cluster-pool", cluster_pool_cidr: "10.244.0.0/16", cluster_pool_mask_size: 24,
    routing_mode: "tunnel", tunnel_protocol: "vxlan", native_routing_cidr: null,
    kube_proxy_replacement: false, k8s_service_host: null, k8s_service_port: 6443,
    encryption: "none", hubble: true, hubble_ui: false, operator_replicas: 1
}

def "test install helpers" [] {
    assert ((cli-url "0.15.7" (normalize-arch "arm64")) | str ends-with "/v0.15.7/cilium-linux-arm64.tar.gz")
    let args = (helm-args "oci://localhost:5000/charts/cilium" "1.14.0" "kube-system" "/v.yaml")
    assert equal ($args | first 4) ["helm" "upgrade" "--install" "cilium"]
    assert ("1.14.0" in $args)
}

def "test helm-values" [] {
    let v = (helm-values $SETTINGS)
    assert equal $v.tunnelProtocol "vxlan"
    assert equal $v.kubeProxyReplacement "false"
    assert not ("k8sServiceHost" in $v)
    let kpr = (helm-values ($SETTINGS | merge {kube_proxy_replacement: true, k8s_service_host: "10.0.0.100", routing_mode: "native", native_routing_cidr: "10.0.0.0/8"}))
    assert equal $kpr.k8sServiceHost "10.0.0.100"
    assert equal $kpr.ipv4NativeRoutingCIDR "10.0.0.0/8"
    assert equal $kpr.tunnelProtocol ""
}

def "test status" [] {
    let status = {deployment_status: {cilium: {Desired: 3, Ready: 3}, cilium-operator: {Desired: 1, Ready: 0}}}
    assert equal (unhealthy $status) ["cilium-operator"]
    assert equal (unhealthy {}) []
    assert equal (uninstall-args "kube-system" | first 3) ["helm" "uninstall" "cilium"]
}

def main [] {
    test install helpers
    test helm-values
    test status
    print "cilium: 3 tests passed"
}
