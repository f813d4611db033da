#!/usr/bin/env nu
# Remove the Helm client; its cache and configuration only with --purge. Releases stay in the cluster.

# What an uninstall removes.
export def paths-to-remove [prefix: string, --purge]: nothing -> list<string> {
    let installed = [($prefix | path join "bin" "helm")]
    if $purge { $installed ++ ["/var/cache/helm" "/etc/helm"] } else { $installed }
}

def main [
    --prefix: path = "/usr/local"  # install root used by install.nu
    --purge                        # also remove the cache and configuration
    --dry-run                      # print the steps instead of running them
] {
    for p in (paths-to-remove $prefix --purge=$purge) {
        if $dry_run { print $"would remove ($p)" } else { rm -rf $p }
    }
    print "helm removed"
}
