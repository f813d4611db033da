#!/usr/bin/env nu
# Deploy the buildkit cluster: apply the rendered manifests and wait for the builders.
# BuildKit build farm on Kubernetes for container images

const NAME = "buildkit"

# The kubectl command line for one action on one manifest.
export def kubectl-args [action: string, namespace: string, file: string, --context: string]: nothing -> list<string> {
    let base = ["kubectl" $action "--namespace" $namespace "-f" $file]
    if $context == null { $base } else { $base ++ ["--context" $context] }
}

# Manifests are applied in name order, so prefixes (00-, 10-) order them.
export def apply-order [files: list<string>]: nothing -> list<string> {
    $files | where {|f| ($f | str ends-with ".yaml") or ($f | str ends-with ".yml") } | sort
}

# The address CI jobs give buildctl (--addr) to reach the builders.
export def buildctl-addr [namespace: string, port: int]: nothing -> string {
    $"tcp://buildkitd.($namespace).svc.cluster.local:($port)"
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
    --namespace: string = "buildkit"                                # namespace to deploy into
    --port: int = 1234                                              # buildkitd port
    --work-dir: path = "/tmp/provisioning/clusters/buildkit"        # rendered manifests
    --context: string                                               # kubectl context (default: current)
    --dry-run                                                       # print the steps instead of running them
] {
    let files = (apply-order (glob ($work_dir | path join "*.y*ml")))
    if ($files | is-empty) and not $dry_run {
        error make {msg: $"no manifests in ($work_dir): render the templates first"}
    }
    for f in $files {
        run-step $dry_run (kubectl-args "apply" $namespace $f --context=$context)
    }
    run-step $dry_run [kubectl rollout status --namespace $namespace statefulset/buildkitd --timeout=300s]
    if not $dry_run { print $"($NAME) ready: buildctl --addr (buildctl-addr $namespace $port)" }  # a dry run only shows the steps
}
