#!/usr/bin/env nu
# Check a Kubernetes node: versions, kubelet, and (on control planes) API health and node readiness.

# The gitVersion from `kubectl version -o json` (client or server part), without the leading v.
export def parse-version [json_text: string, part: string]: nothing -> string {
    let parsed = (try { $json_text | from json } catch { null })
    if ($parsed | describe) !~ '^record' { return "" }
    let info = ($parsed | get -o $"($part)Version")
    if $info == null { "" } else { $info.gitVersion? | default "" | str replace --regex '^v' '' }
}

# Nodes from `kubectl get nodes -o json` that are not Ready.
export def not-ready [nodes_json: string]: nothing -> list<string> {
    $nodes_json | from json | get items | where {|n|
        ($n.status.conditions | where type == "Ready" | get status.0? | default "Unknown") != "True"
    } | get metadata.name
}

def main [
    --kubeconfig: path = "/etc/kubernetes/admin.conf"  # admin credentials (control planes)
    --json                                            # print the results as JSON
] {
    let kubelet = (^systemctl is-active kubelet | complete | get stdout | str trim)
    let results = if ($kubeconfig | path exists) {
        let ver = (^kubectl --kubeconfig $kubeconfig version -o json | complete)
        let nodes = (^kubectl --kubeconfig $kubeconfig get nodes -o json | complete)
        let pending = if $nodes.exit_code == 0 { not-ready $nodes.stdout } else { ["(api unreachable)"] }
        [
            {check: "kubelet", ok: ($kubelet == "active"), detail: $kubelet}
            {check: "api", ok: ($ver.exit_code == 0), detail: $"server v(parse-version $ver.stdout 'server')"}
            {check: "nodes", ok: ($pending | is-empty), detail: ($pending | str join ', ')}
        ]
    } else {
        [{check: "kubelet", ok: ($kubelet == "active"), detail: $kubelet}]
    }
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
