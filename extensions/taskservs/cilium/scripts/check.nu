#!/usr/bin/env nu
# Check Cilium with `cilium status`: agents, operator and (when enabled) Hubble relay.

# Components from `cilium status -o json` whose desired and ready counts differ.
export def unhealthy [status: record]: nothing -> list<string> {
    $status | get -o deployment_status | default {} | transpose name counts | where {|c|
        ($c.counts.Desired? | default 0) != ($c.counts.Ready? | default 0)
    } | get name
}

def main [
    --namespace: string = "kube-system"  # release namespace
    --json                               # print the results as JSON
] {
    let res = (^cilium status --namespace $namespace --output json | complete)
    let results = if $res.exit_code != 0 {
        [{check: "status", ok: false, detail: ($res.stderr | str trim)}]
    } else {
        let bad = (unhealthy ($res.stdout | from json))
        [{check: "status", ok: ($bad | is-empty), detail: (if ($bad | is-empty) { "all components ready" } else { $"not ready: ($bad | str join ', ')" })}]
    }
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
