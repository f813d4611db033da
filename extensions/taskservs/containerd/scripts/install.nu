#!/usr/bin/env nu
# Install containerd, runc and the CNI plugins from their release archives, with a systemd unit.
# containerd container runtime with runc and CNI plugins

const DEFAULT_VERSION = "1.7.0"
const RUNC_VERSION = "1.1.9"
const CNI_VERSION = "1.3.0"

# Map `uname -m` output to the architecture names release archives use.
export def normalize-arch [machine: string]: nothing -> string {
    match $machine {
        "x86_64" | "amd64" => "amd64"
        "aarch64" | "arm64" => "arm64"
        _ => { error make {msg: $"unsupported architecture: ($machine)"} }
    }
}

# Download URLs of the three components for one architecture.
export def release-urls [version: string, runc: string, cni: string, arch: string]: nothing -> record {
    {
        containerd: $"https://github.com/containerd/containerd/releases/download/v($version)/containerd-($version)-linux-($arch).tar.gz"
        runc: $"https://github.com/opencontainers/runc/releases/download/v($runc)/runc.($arch)"
        cni: $"https://github.com/containernetworking/plugins/releases/download/v($cni)/cni-plugins-linux-($arch)-v($cni).tgz"
    }
}

# Kernel modules and sysctls containers need.
export def host-settings []: nothing -> record {
    {
        modules: ["overlay" "br_netfilter"]
        sysctls: {"net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1, "net.ipv4.ip_forward": 1}
    }
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
    --version: string = $DEFAULT_VERSION           # containerd release
    --runc-version: string = $RUNC_VERSION         # runc release
    --cni-version: string = $CNI_VERSION           # CNI plugins release
    --work-dir: path = "/tmp/provisioning/containerd"  # downloads and rendered templates
    --dry-run                                      # print the steps instead of running them
] {
    let arch = (normalize-arch (^uname -m | str trim))
    let urls = (release-urls $version $runc_version $cni_version $arch)
    let host = (host-settings)
    run-step $dry_run [mkdir -p $work_dir /opt/cni/bin /etc/containerd]
    for module in $host.modules {
        run-step $dry_run [modprobe $module]
    }
    for entry in ($host.sysctls | transpose key value) {
        run-step $dry_run [sysctl -w $"($entry.key)=($entry.value)"]
    }
    run-step $dry_run [curl -fsSL -o $"($work_dir)/containerd.tar.gz" $urls.containerd]
    run-step $dry_run [tar -xzf $"($work_dir)/containerd.tar.gz" -C /usr/local]
    run-step $dry_run [curl -fsSL -o /usr/local/sbin/runc $urls.runc]
    run-step $dry_run [chmod "0755" /usr/local/sbin/runc]
    run-step $dry_run [curl -fsSL -o $"($work_dir)/cni.tgz" $urls.cni]
    run-step $dry_run [tar -xzf $"($work_dir)/cni.tgz" -C /opt/cni/bin]
    run-step $dry_run [install -m "0644" $"($work_dir)/config.toml" /etc/containerd/config.toml]
    run-step $dry_run [install -m "0644" $"($work_dir)/containerd.service" /etc/systemd/system/containerd.service]
    run-step $dry_run [systemctl daemon-reload]
    run-step $dry_run [systemctl enable --now containerd]
    if not $dry_run { print $"containerd ($version) with runc ($runc_version) installed" }  # a dry run only shows the steps
}
