#!/usr/bin/env nu
# Remove the ingress-nginx release; the namespace only with --purge. Ingresses stop being served.

# The helm command that removes the release.
export def uninstall-args [release: string, namespace: string]: nothing -> list<string> {
    ["helm" "uninstall" $release "--namespace" $namespace "--wait"]
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
    --namespace: string = "ingress-nginx"  # release namespace
    --release: string = "ingress-nginx"    # release name
    --purge                                # also delete the namespace
    --dry-run                              # print the steps instead of running them
] {
    run-step $dry_run (uninstall-args $release $namespace)
    if $purge {
        run-step $dry_run [kubectl delete namespace $namespace --ignore-not-found]
    }
    print "ingress-nginx removed"
}
