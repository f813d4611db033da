#!/usr/bin/env nu
# Install Prometheus and promtool from the release archive, with a system user and systemd unit.
# Prometheus monitoring server and time series database

const DEFAULT_VERSION = "2.47.0"

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
    let base = $"prometheus-($version).linux-($arch)"
    {url: $"https://github.com/prometheus/prometheus/releases/download/v($version)/($base).tar.gz", folder: $base}
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
    --version: string = $DEFAULT_VERSION               # Prometheus release
    --work-dir: path = "/tmp/provisioning/prometheus"  # downloads and rendered templates
    --dry-run                                          # print the steps instead of running them
] {
    let rel = (release $version (normalize-arch (^uname -m | str trim)))
    let archive = ($work_dir | path join "prometheus.tar.gz")
    run-step $dry_run [useradd --system --no-create-home --shell /usr/sbin/nologin prometheus]
    run-step $dry_run [install -d -o prometheus -g prometheus /etc/prometheus /var/lib/prometheus]
    run-step $dry_run [curl -fsSL -o $archive $rel.url]
    run-step $dry_run [tar -xzf $archive -C $work_dir]
    for bin in [prometheus promtool] {
        run-step $dry_run [install -m "0755" ($work_dir | path join $rel.folder $bin) $"/usr/local/bin/($bin)"]
    }
    run-step $dry_run [install -m "0644" ($work_dir | path join "prometheus.yml") /etc/prometheus/prometheus.yml]
    run-step $dry_run [install -m "0644" ($work_dir | path join "prometheus.service") /etc/systemd/system/prometheus.service]
    run-step $dry_run [systemctl daemon-reload]
    run-step $dry_run [systemctl enable --now prometheus]
    if not $dry_run { print $"prometheus ($version) installed" }  # a dry run only shows the steps
}
