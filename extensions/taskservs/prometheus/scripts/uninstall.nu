#!/usr/bin/env nu
# Remove Prometheus from this host; its time series only with --purge.

# What an uninstall removes.
export def paths-to-remove [--purge]: nothing -> list<string> {
    let installed = ["/usr/local/bin/prometheus" "/usr/local/bin/promtool" "/etc/systemd/system/prometheus.service"]
    if $purge { $installed ++ ["/etc/prometheus" "/var/lib/prometheus"] } else { $installed }
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
    --purge    # also remove configuration and stored metrics
    --dry-run  # print the steps instead of running them
] {
    run-step $dry_run [systemctl disable --now prometheus]
    for p in (paths-to-remove --purge=$purge) {
        run-step $dry_run [rm -rf $p]
    }
    run-step $dry_run [systemctl daemon-reload]
    print "prometheus removed"
}
