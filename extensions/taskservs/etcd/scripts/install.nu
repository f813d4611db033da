#!/usr/bin/env nu
# Install etcd and etcdctl from the release archive, with a systemd unit.
# etcd distributed key-value store for Kubernetes control planes

const DEFAULT_VERSION = "3.5.9"

# Map `uname -m` output to the architecture names release archives use.
export def normalize-arch [machine: string]: nothing -> string {
    match $machine {
        "x86_64" | "amd64" => "amd64"
        "aarch64" | "arm64" => "arm64"
        _ => { error make {msg: $"unsupported architecture: ($machine)"} }
    }
}

# The release archive and the folder it unpacks to.
export def release [version: string, arch: string]: nothing -> record {
    let base = $"etcd-v($version)-linux-($arch)"
    {url: $"https://github.com/etcd-io/etcd/releases/download/v($version)/($base).tar.gz", folder: $base}
}

# Print or run one step.
def run-step [dry_run: bool, cmd: list<string>] {
    if $dry_run {
        print $"would run: ($cmd | str join ' ')"
    } else {
        run-external ...$cmd
    }
}

def main [
    --version: string = $DEFAULT_VERSION          # etcd release
    --data-dir: path = "/var/lib/etcd"            # member data
    --work-dir: path = "/tmp/provisioning/etcd"   # downloads and rendered templates
    --dry-run                                     # print the steps instead of running them
] {
    let rel = (release $version (normalize-arch (^uname -m | str trim)))
    run-step $dry_run [mkdir -p $work_dir /etc/etcd/pki]
    run-step $dry_run [install -d -m "0700" $data_dir]
    run-step $dry_run [curl -fsSL -o $"($work_dir)/etcd.tar.gz" $rel.url]
    run-step $dry_run [tar -xzf $"($work_dir)/etcd.tar.gz" -C $work_dir]
    for bin in [etcd etcdctl etcdutl] {
        run-step $dry_run [install -m "0755" ($work_dir | path join $rel.folder $bin) $"/usr/local/bin/($bin)"]
    }
    run-step $dry_run [install -m "0644" $"($work_dir)/etcd.conf.yml" /etc/etcd/etcd.conf.yml]
    run-step $dry_run [install -m "0644" $"($work_dir)/etcd.service" /etc/systemd/system/etcd.service]
    run-step $dry_run [systemctl daemon-reload]
    run-step $dry_run [systemctl enable --now etcd]
    if not $dry_run { print $"etcd ($version) installed" }  # a dry run only shows the steps
}
