#!/usr/bin/env nu
# Remove etcd from this host; the member's data only with --purge (take a snapshot first).

# What an uninstall removes.
export def paths-to-remove [data_dir: string, --purge]: nothing -> list<string> {
    let installed = ["/usr/local/bin/etcd" "/usr/local/bin/etcdctl" "/usr/local/bin/etcdutl" "/etc/systemd/system/etcd.service"]
    if $purge { $installed ++ ["/etc/etcd" $data_dir] } else { $installed }
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
    --data-dir: path = "/var/lib/etcd"  # member data
    --snapshot: path                    # save a snapshot here before removing
    --purge                             # also remove configuration, certificates and data
    --dry-run                           # print the steps instead of running them
] {
    if $snapshot != null {
        run-step $dry_run [etcdctl snapshot save $snapshot]
    }
    run-step $dry_run [systemctl disable --now etcd]
    for p in (paths-to-remove $data_dir --purge=$purge) {
        run-step $dry_run [rm -rf $p]
    }
    run-step $dry_run [systemctl daemon-reload]
    print "etcd removed"
}
