#!/usr/bin/env nu
# Install the cilium CLI and the Cilium Helm release (values rendered by the core).
# Cilium eBPF-based networking, security and observability for Kubernetes

const DEFAULT_VERSION = "1.14.0"
const CLI_VERSION = "0.15.7"

# Map `uname -m` output to the architecture names release archives use.
export def normalize-arch [machine: string]: nothing -> string {
    match $machine {
        "x86_64" | "amd64" => "amd64"
        "aarch64" | "arm64" => "arm64"
        _ => { error make {msg: $"unsupported architecture: ($machine)"} }
    }
}

# The cilium CLI archive for a version and architecture.
export def cli-url [version: string, arch: string]: nothing -> string {
    $"https://github.com/cilium/cilium-cli/releases/download/v($version)/cilium-linux-($arch).tar.gz"
}

# The helm command that installs or upgrades the release.
export def helm-args [chart: string, version: string, namespace: string, values: string]: nothing -> list<string> {
    ["helm" "upgrade" "--install" "cilium" $chart "--version" $version "--namespace" $namespace "--values" $values "--wait" "--timeout" "10m"]
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
    --version: string = $DEFAULT_VERSION                  # Cilium release
    --chart: string = "oci://localhost:5000/charts/cilium"  # Helm chart
    --namespace: string = "kube-system"                   # release namespace
    --work-dir: path = "/tmp/provisioning/cilium"         # rendered values.yaml
    --dry-run                                             # print the steps instead of running them
] {
    let arch = (normalize-arch (^uname -m | str trim))
    let archive = ($work_dir | path join "cilium-cli.tar.gz")
    run-step $dry_run [curl -fsSL -o $archive (cli-url $CLI_VERSION $arch)]
    run-step $dry_run [tar -xzf $archive -C /usr/local/bin cilium]
    run-step $dry_run (helm-args $chart $version $namespace ($work_dir | path join "values.yaml"))
    if not $dry_run { print $"cilium ($version) installed in ($namespace)" }  # a dry run only shows the steps
}
