#!/usr/bin/env nu
# Reset this node with kubeadm and remove the binaries; state directories only with --purge.

# What an uninstall removes after `kubeadm reset`.
export def paths-to-remove [--purge]: nothing -> list<string> {
    let installed = ["/usr/local/bin/kubeadm" "/usr/local/bin/kubelet" "/usr/local/bin/kubectl" "/etc/systemd/system/kubelet.service"]
    if $purge { $installed ++ ["/etc/kubernetes" "/var/lib/kubelet" "/etc/cni/net.d"] } else { $installed }
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
    --purge    # also remove /etc/kubernetes, kubelet state and CNI configuration
    --dry-run  # print the steps instead of running them
] {
    run-step $dry_run [kubeadm reset --force]
    run-step $dry_run [systemctl disable --now kubelet]
    for p in (paths-to-remove --purge=$purge) {
        run-step $dry_run [rm -rf $p]
    }
    run-step $dry_run [systemctl daemon-reload]
    print "kubernetes removed from this node"
}
