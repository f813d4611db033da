#!/usr/bin/env nu
# Turn the nginx-ingress taskserv settings into Helm values (values.yaml).

# Helm values for the ingress-nginx chart.
export def helm-values [s: record]: nothing -> record {
    let node_ports = if $s.service_type == "NodePort" {
        {nodePorts: ({http: $s.http_node_port?, https: $s.https_node_port?} | compact --empty)}
    } else { {} }
    let ssl = if ($s.default_ssl_certificate? | is-empty) { {} } else { {extraArgs: {default-ssl-certificate: $s.default_ssl_certificate}} }
    {
        controller: ({
            replicaCount: $s.replicas
            ingressClassResource: {name: $s.ingress_class, default: $s.default_class}
            ingressClass: $s.ingress_class
            service: ({type: $s.service_type} | merge $node_ports)
            metrics: {enabled: $s.metrics}
            config: $s.config
        } | merge $ssl)
    }
}

def main [
    --settings: path                                                  # JSON or YAML with the NginxIngress schema's values
    --values: path = "/tmp/provisioning/nginx-ingress/values.yaml"    # file to write
    --dry-run                                                         # print the values instead of writing them
] {
    if $settings == null { error make {msg: "--settings is required"} }
    let text = (helm-values (open $settings) | to yaml)
    if $dry_run { print $text } else { mkdir ($values | path dirname); $text | save --force $values; print $"wrote ($values)" }
}
