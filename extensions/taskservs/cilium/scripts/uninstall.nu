#!/usr/bin/env nu
# Remove the Cilium release (and the CLI with --purge). Pods lose networking until another CNI is installed.

# The helm command that removes the release.
export def uninstall-args [namespace: string]: nothing -> list<string> {
    ["helm" "uninstall" "cilium" "--namespace" $namespace "--wait"]
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
    --namespace: string = "kube-system"  # release namespace
    --purge                              # also remove the cilium CLI and CNI configuration
    --dry-run                            # print the steps instead of running them
] {
    run-step $dry_run (uninstall-args $namespace)
    if $purge {
        run-step $dry_run [rm -f /usr/local/bin/cilium /etc/cni/net.d/05-cilium.conflist]
    }
    print "cilium removed"
}
