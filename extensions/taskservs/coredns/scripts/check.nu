#!/usr/bin/env nu
# Check CoreDNS: deployment ready and the kubernetes service name resolving through it.

# Ready and desired replicas from `kubectl get deployment -o json`.
export def replica-status [deployment: record]: nothing -> record {
    {ready: ($deployment.status.readyReplicas? | default 0), desired: ($deployment.spec.replicas? | default 1)}
}

# The dig command that resolves the API service through the cluster DNS.
export def dig-args [server: string, domain: string]: nothing -> list<string> {
    ["dig" "+short" $"@($server)" $"kubernetes.default.svc.($domain)"]
}

def main [
    --namespace: string = "kube-system"    # namespace of the deployment
    --cluster-ip: string = "10.96.0.10"    # kube-dns service IP
    --domain: string = "cluster.local"     # cluster domain
    --json                                 # print the results as JSON
] {
    let dep = (^kubectl get deployment coredns --namespace $namespace -o json | complete)
    let replicas = if $dep.exit_code == 0 { replica-status ($dep.stdout | from json) } else { {ready: 0, desired: 1} }
    let answer = (run-external ...(dig-args $cluster_ip $domain) | complete | get stdout | str trim)
    let results = [
        {check: "deployment", ok: ($replicas.ready >= $replicas.desired), detail: $"($replicas.ready)/($replicas.desired) ready"}
        {check: "resolve", ok: ($answer | is-not-empty), detail: $answer}
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
