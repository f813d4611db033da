#!/usr/bin/env nu
# Remove the web cluster's resources (the database and its data are the postgres taskserv's).

use install.nu [kubectl-args apply-order]

# Print or run one step.
def run-step [dry_run: bool, cmd: list<string>] {
    if $dry_run {
        print $"would run: ($cmd | str join ' ')"
    } else {
        run-external ...$cmd
    }
}

def main [
    --namespace: string = "web"                           # namespace deployed into
    --work-dir: path = "/tmp/provisioning/clusters/web"   # rendered manifests
    --context: string                                     # kubectl context (default: current)
    --delete-namespace                                    # also delete the namespace
    --dry-run                                             # print the steps instead of running them
] {
    for f in (apply-order (glob ($work_dir | path join "*.y*ml")) | reverse) {
        run-step $dry_run (kubectl-args "delete" $namespace $f --context=$context)
    }
    if $delete_namespace {
        run-step $dry_run [kubectl delete namespace $namespace]
    }
}
