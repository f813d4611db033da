#!/usr/bin/env nu
# Remove containerd, runc and the CNI plugins; images and containers only with --purge.

# What an uninstall removes.
export def paths-to-remove [--purge]: nothing -> list<string> {
    let installed = [
        "/usr/local/bin/containerd" "/usr/local/bin/containerd-shim-runc-v2" "/usr/local/bin/ctr"
        "/usr/local/sbin/runc" "/etc/systemd/system/containerd.service"
    ]
    if $purge { $installed ++ ["/etc/containerd" "/var/lib/containerd" "/opt/cni/bin"] } else { $installed }
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
    --purge    # also remove configuration, images and CNI plugins
    --dry-run  # print the steps instead of running them
] {
    run-step $dry_run [systemctl disable --now containerd]
    for p in (paths-to-remove --purge=$purge) {
        run-step $dry_run [rm -rf $p]
    }
    run-step $dry_run [systemctl daemon-reload]
    print "containerd removed"
}
