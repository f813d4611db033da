#!/usr/bin/env nu
# Check etcd: version, service state and endpoint health as etcdctl sees it.

# The server version from `etcdctl version` output ("etcdctl version: 3.5.9\nAPI version: 3.5"), or "".
export def parse-version [text: string]: nothing -> string {
    $text | parse --regex 'etcdctl version: (?<v>\d+\.\d+\.\d+)' | get v.0? | default ""
}

# etcdctl's flags for a TLS (or plain) endpoint.
export def etcdctl-flags [endpoint: string, cert_dir: string, tls: bool]: nothing -> list<string> {
    let base = ["--endpoints" $endpoint]
    if $tls {
        $base ++ ["--cacert" $"($cert_dir)/ca.crt" "--cert" $"($cert_dir)/server.crt" "--key" $"($cert_dir)/server.key"]
    } else {
        $base
    }
}

def main [
    --endpoint: string = "https://127.0.0.1:2379"  # client URL to probe
    --cert-dir: path = "/etc/etcd/pki"             # client certificates
    --json                                         # print the results as JSON
] {
    let tls = ($endpoint | str starts-with "https://")
    let version = (parse-version (^etcdctl version | complete | get stdout))
    let health = (run-external etcdctl ...(etcdctl-flags $endpoint $cert_dir $tls) endpoint health | complete)
    let active = (^systemctl is-active etcd | complete | get stdout | str trim)
    let results = [
        {check: "version", ok: ($version | is-not-empty), detail: $version}
        {check: "service", ok: ($active == "active"), detail: $"systemd unit is ($active)"}
        {check: "health", ok: ($health.exit_code == 0), detail: ($health.stdout + $health.stderr | str trim)}
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
