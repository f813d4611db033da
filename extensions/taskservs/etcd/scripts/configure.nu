#!/usr/bin/env nu
# Write etcd.conf.yml for this member from the cluster's member list.

# The --initial-cluster value: name=https://ip:peer_port for every member.
export def initial-cluster [members: list<record>, peer_port: int, tls: bool]: nothing -> string {
    let scheme = if $tls { "https" } else { "http" }
    $members | each {|m| $"($m.name)=($scheme)://($m.ip):($peer_port)" } | str join ","
}

# etcd's configuration file for the member called NAME.
export def build-config [s: record]: nothing -> record {
    let me = ($s.members | where name == $s.member_name | first)
    let scheme = if $s.tls { "https" } else { "http" }
    let base = {
        name: $me.name
        data-dir: $s.data_dir
        listen-client-urls: $"($scheme)://($me.ip):($s.client_port),($scheme)://127.0.0.1:($s.client_port)"
        advertise-client-urls: $"($scheme)://($me.ip):($s.client_port)"
        listen-peer-urls: $"($scheme)://($me.ip):($s.peer_port)"
        initial-advertise-peer-urls: $"($scheme)://($me.ip):($s.peer_port)"
        initial-cluster: (initial-cluster $s.members $s.peer_port $s.tls)
        initial-cluster-state: $s.initial_cluster_state
        initial-cluster-token: $s.initial_cluster_token
        quota-backend-bytes: ($s.quota_backend_bytes_mb * 1024 * 1024)
        auto-compaction-retention: $s.auto_compaction_retention
        snapshot-count: $s.snapshot_count
    }
    if not $s.tls { return $base }
    let pki = $s.cert_dir
    $base | merge {
        client-transport-security: {cert-file: $"($pki)/server.crt", key-file: $"($pki)/server.key", trusted-ca-file: $"($pki)/ca.crt", client-cert-auth: true}
        peer-transport-security: {cert-file: $"($pki)/peer.crt", key-file: $"($pki)/peer.key", trusted-ca-file: $"($pki)/ca.crt", client-cert-auth: true}
    }
}

def main [
    --settings: path                              # JSON or YAML with the Etcd schema's values
    --config: path = "/etc/etcd/etcd.conf.yml"    # file to write
    --dry-run                                     # print the file instead of writing it
] {
    if $settings == null { error make {msg: "--settings is required: the member list comes from the cluster definition"} }
    let text = (build-config (open $settings) | to yaml)
    if $dry_run { print $text } else { $text | save --force $config; print $"wrote ($config)" }
}
