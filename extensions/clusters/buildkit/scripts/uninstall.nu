#!/usr/bin/env nu
# Remove the buildkit cluster; build cache volumes only with --purge.

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
    --namespace: string = "buildkit"                            # namespace deployed into
    --work-dir: path = "/tmp/provisioning/clusters/buildkit"    # rendered manifests
    --context: string                                           # kubectl context (default: current)
    --purge                                                     # also delete cache volumes and the namespace
    --dry-run                                                   # print the steps instead of running them
] {
    for f in (apply-order (glob ($work_dir | path join "*.y*ml")) | reverse) {
        run-step $dry_run (kubectl-args "delete" $namespace $f --context=$context)
    }
    if $purge {
        run-step $dry_run [kubectl delete pvc --namespace $namespace -l app=buildkitd]
        run-step $dry_run [kubectl delete namespace $namespace]
    }
}
