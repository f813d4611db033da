#!/usr/bin/env nu
# Check ingress-nginx: controller rollout, IngressClass and the external address.

# The external address of a LoadBalancer service from `kubectl get service -o json`, or "".
export def external-address [service: record]: nothing -> string {
    let ingress = ($service.status?.loadBalancer?.ingress? | default [])
    if ($ingress | is-empty) { "" } else { $ingress | first | get -o ip | default ($ingress | first | get -o hostname | default "") }
}

def main [
    --namespace: string = "ingress-nginx"  # release namespace
    --release: string = "ingress-nginx"    # release name
    --class: string = "nginx"              # IngressClass name
    --json                                 # print the results as JSON
] {
    let rollout = (^kubectl rollout status --namespace $namespace $"deployment/($release)-controller" --timeout=60s | complete)
    let klass = (^kubectl get ingressclass $class | complete)
    let svc = (^kubectl get service --namespace $namespace $"($release)-controller" -o json | complete)
    let address = if $svc.exit_code == 0 { external-address ($svc.stdout | from json) } else { "" }
    let results = [
        {check: "controller", ok: ($rollout.exit_code == 0), detail: ($rollout.stdout | str trim)}
        {check: "ingressclass", ok: ($klass.exit_code == 0), detail: $class}
        {check: "address", ok: ($address | is-not-empty), detail: $address}
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
