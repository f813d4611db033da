#!/usr/bin/env nu
# Remove CoreDNS from the cluster (name resolution inside the cluster stops).

# The objects the rendered manifest creates, in deletion order.
export def objects [namespace: string]: nothing -> list<list<string>> {
    ["deployment/coredns" "service/kube-dns" "configmap/coredns" "serviceaccount/coredns"] | each {|o|
        ["kubectl" "delete" "--namespace" $namespace "--ignore-not-found" $o]
    } | append [["kubectl" "delete" "--ignore-not-found" "clusterrolebinding/system:coredns" "clusterrole/system:coredns"]]
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
    --namespace: string = "kube-system"  # namespace of the deployment
    --dry-run                            # print the steps instead of running them
] {
    for step in (objects $namespace) {
        run-step $dry_run $step
    }
    print "coredns removed"
}
