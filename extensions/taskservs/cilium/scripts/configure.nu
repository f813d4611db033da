#!/usr/bin/env nu
# Turn the Cilium taskserv settings into Helm values (values.yaml).

# Helm values for the cilium chart from the taskserv settings.
export def helm-values [s: record]: nothing -> record {
    let base = {
        ipam: {mode: $s.ipam_mode, operator: {clusterPoolIPv4PodCIDRList: [$s.cluster_pool_cidr], clusterPoolIPv4MaskSize: $s.cluster_pool_mask_size}}
        routingMode: $s.routing_mode
        tunnelProtocol: (if $s.routing_mode == "tunnel" { $s.tunnel_protocol } else { "" })
        kubeProxyReplacement: ($s.kube_proxy_replacement | into string)
        operator: {replicas: $s.operator_replicas}
        hubble: {enabled: $s.hubble, relay: {enabled: $s.hubble}, ui: {enabled: $s.hubble_ui}}
        encryption: {enabled: ($s.encryption != "none"), type: (if $s.encryption == "none" { "wireguard" } else { $s.encryption })}
    }
    let native = if $s.routing_mode == "native" { {ipv4NativeRoutingCIDR: $s.native_routing_cidr, autoDirectNodeRoutes: true} } else { {} }
    let kpr = if $s.kube_proxy_replacement { {k8sServiceHost: $s.k8s_service_host, k8sServicePort: $s.k8s_service_port} } else { {} }
    $base | merge $native | merge $kpr
}

def main [
    --settings: path                                          # JSON or YAML with the Cilium schema's values
    --values: path = "/tmp/provisioning/cilium/values.yaml"   # file to write
    --dry-run                                                 # print the values instead of writing them
] {
    if $settings == null { error make {msg: "--settings is required"} }
    let text = (helm-values (open $settings) | to yaml)
    if $dry_run { print $text } else { mkdir ($values | path dirname); $text | save --force $values; print $"wrote ($values)" }
}
