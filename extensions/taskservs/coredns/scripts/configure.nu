#!/usr/bin/env nu
# Rebuild the Corefile from the taskserv settings and update the coredns ConfigMap.

# The Corefile for the cluster zone, stub domains and upstream forwarders.
export def corefile [s: record]: nothing -> string {
    let stubs = ($s.stub_domains | each {|d|
        $"($d.domain):53 {\n    errors\n    cache ($s.cache_ttl)\n    forward . ($d.servers | str join ' ')\n}\n"
    } | str join "")
    let main = ([
        ".:53 {"
        "    errors"
        "    health {"
        "        lameduck 5s"
        "    }"
        "    ready"
        $"    kubernetes ($s.cluster_domain) in-addr.arpa ip6.arpa {"
        "        pods insecure"
        "        fallthrough in-addr.arpa ip6.arpa"
        "        ttl 30"
        "    }"
        "    prometheus :9153"
        $"    forward . ($s.upstream_servers | str join ' ') {"
        "        max_concurrent 1000"
        "    }"
        $"    cache ($s.cache_ttl)"
        "    loop"
        "    reload"
        "    loadbalance"
        "}"
    ] | str join "\n")
    $"($main)\n($stubs)"
}

def main [
    --settings: path                     # JSON or YAML with the Coredns schema's values
    --namespace: string = "kube-system"  # namespace of the ConfigMap
    --dry-run                            # print the Corefile instead of applying it
] {
    if $settings == null { error make {msg: "--settings is required"} }
    let text = (corefile (open $settings))
    if $dry_run { print $text; return }
    let file = ($nu.temp-path | path join "Corefile")
    $text | save --force $file
    let manifest = (^kubectl create configmap coredns --namespace $namespace $"--from-file=Corefile=($file)" --dry-run=client -o yaml)
    $manifest | ^kubectl apply -f -
    rm $file
}
