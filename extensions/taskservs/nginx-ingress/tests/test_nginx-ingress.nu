# Tests of the nginx-ingress scripts' pure helpers: `nu tests/test_nginx-ingress.nu`
use std/assert
use ../scripts/install.nu [helm-args]
use ../scripts/configure.nu [helm-values]
use ../scripts/check.nu [external-address]
use ../scripts/uninstall.nu [uninstall-args]

const SETTINGS = {
    replicas: 2, ingress_class: "nginx", default_class: true, service_type: "LoadBalancer",
    metrics: true, config: {use-forwarded-headers: "true"}
}

def "test helm-args" [] {
    let args = (helm-args "ingress-nginx" "oci://localhost:5000/charts/ingress-nginx" "4.8.3" "ingress-nginx" "/v.yaml")
    assert equal ($args | first 5) ["helm" "upgrade" "--install" "ingress-nginx" "oci://localhost:5000/charts/ingress-nginx"]
    assert ("--create-namespace" in $args)
    assert equal (uninstall-args "ingress-nginx" "ingress-nginx" | get 1) "uninstall"
}

def "test helm-values" [] {
    let v = (helm-values $SETTINGS)
    assert equal $v.controller.service {type: "LoadBalancer"}
    assert equal $v.controller.ingressClassResource.default true
    let np = (helm-values ($SETTINGS | merge {service_type: "NodePort", http_node_port: 30080, https_node_port: 30443, default_ssl_certificate: "ingress-nginx/wildcard"}))
    assert equal $np.controller.service.nodePorts {http: 30080, https: 30443}
    assert equal $np.controller.extraArgs.default-ssl-certificate "ingress-nginx/wildcard"
}

def "test external-address" [] {
    assert equal (external-address {status: {loadBalancer: {ingress: [{ip: "203.0.113.10"}]}}}) "203.0.113.10"
    assert equal (external-address {status: {loadBalancer: {ingress: [{hostname: "lb.example.com"}]}}}) "lb.example.com"
    assert equal (external-address {status: {loadBalancer: {}}}) ""
}

def main [] {
    test helm-args
    test helm-values
    test external-address
    print "nginx-ingress: 3 tests passed"
}
