#!/usr/bin/env nu
# Deploy CoreDNS into the cluster from the manifests the core rendered.
# CoreDNS cluster DNS server

const DEFAULT_VERSION = "1.11.1"

# The kubectl commands that deploy CoreDNS from a rendered manifest.
export def apply-steps [manifest: string, namespace: string]: nothing -> list<list<string>> {
    [
        ["kubectl" "apply" "--namespace" $namespace "-f" $manifest]
        ["kubectl" "rollout" "status" "--namespace" $namespace "deployment/coredns" "--timeout=180s"]
    ]
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
    --version: string = $DEFAULT_VERSION            # CoreDNS release (image tag)
    --namespace: string = "kube-system"             # namespace of the kube-dns service
    --work-dir: path = "/tmp/provisioning/coredns"  # rendered coredns.yaml
    --dry-run                                       # print the steps instead of running them
] {
    for step in (apply-steps ($work_dir | path join "coredns.yaml") $namespace) {
        run-step $dry_run $step
    }
    if not $dry_run { print $"coredns ($version) deployed in ($namespace)" }  # a dry run only shows the steps
}
