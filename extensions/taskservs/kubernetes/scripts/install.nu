#!/usr/bin/env nu
# Install kubeadm, kubelet and kubectl (release binaries) and kubelet's systemd unit.
# Kubernetes container orchestration platform

const DEFAULT_VERSION = "1.28.0"
const BINARIES = ["kubeadm" "kubelet" "kubectl"]

# Map `uname -m` output to the architecture names Kubernetes releases use.
export def normalize-arch [machine: string]: nothing -> string {
    match $machine {
        "x86_64" | "amd64" => "amd64"
        "aarch64" | "arm64" => "arm64"
        _ => { error make {msg: $"unsupported architecture: ($machine)"} }
    }
}

# Download URL of one release binary.
export def binary-url [version: string, arch: string, binary: string]: nothing -> string {
    $"https://dl.k8s.io/release/v($version)/bin/linux/($arch)/($binary)"
}

# Host settings kubeadm's preflight checks insist on.
export def preflight-steps []: nothing -> list<list<string>> {
    [
        [swapoff -a]
        [modprobe br_netfilter]
        [sysctl -w net.ipv4.ip_forward=1]
        [sysctl -w net.bridge.bridge-nf-call-iptables=1]
    ]
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
    --version: string = $DEFAULT_VERSION                # Kubernetes release
    --work-dir: path = "/tmp/provisioning/kubernetes"   # rendered templates
    --dry-run                                           # print the steps instead of running them
] {
    let arch = (normalize-arch (^uname -m | str trim))
    for step in (preflight-steps) {
        run-step $dry_run $step
    }
    for bin in $BINARIES {
        run-step $dry_run [curl -fsSL -o $"/usr/local/bin/($bin)" (binary-url $version $arch $bin)]
        run-step $dry_run [chmod "0755" $"/usr/local/bin/($bin)"]
    }
    run-step $dry_run [mkdir -p /var/lib/kubelet /etc/kubernetes/manifests]
    run-step $dry_run [install -m "0644" $"($work_dir)/kubelet.service" /etc/systemd/system/kubelet.service]
    run-step $dry_run [install -m "0644" $"($work_dir)/kubelet-config.yaml" /var/lib/kubelet/config.yaml]
    run-step $dry_run [systemctl daemon-reload]
    run-step $dry_run [systemctl enable kubelet]
    if not $dry_run { print $"kubeadm, kubelet and kubectl ($version) installed; run configure.nu to init or join" }  # a dry run only shows the steps
}
