#!/usr/bin/env nu
# Install the Helm 3 client from the release archive.
# Helm package manager for Kubernetes

const DEFAULT_VERSION = "3.13.0"

# Map `uname -m` output to the architecture names release archives use.
export def normalize-arch [machine: string]: nothing -> string {
    match $machine {
        "x86_64" | "amd64" => "amd64"
        "aarch64" | "arm64" => "arm64"
        _ => { error make {msg: $"unsupported architecture: ($machine)"} }
    }
}

# The release archive and the folder inside it that holds the binary.
export def release [version: string, os: string, arch: string]: nothing -> record {
    {url: $"https://get.helm.sh/helm-v($version)-($os)-($arch).tar.gz", folder: $"($os)-($arch)"}
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
    --version: string = $DEFAULT_VERSION          # Helm release
    --prefix: path = "/usr/local"                 # install root
    --work-dir: path = "/tmp/provisioning/helm"   # downloads
    --dry-run                                     # print the steps instead of running them
] {
    let os = if $nu.os-info.name == "macos" { "darwin" } else { "linux" }
    let rel = (release $version $os (normalize-arch (^uname -m | str trim)))
    let archive = ($work_dir | path join "helm.tar.gz")
    run-step $dry_run [mkdir -p $work_dir]
    run-step $dry_run [curl -fsSL -o $archive $rel.url]
    run-step $dry_run [tar -xzf $archive -C $work_dir]
    run-step $dry_run [install -m "0755" ($work_dir | path join $rel.folder "helm") ($prefix | path join "bin" "helm")]
    if not $dry_run { print $"helm ($version) installed in ($prefix)/bin" }  # a dry run only shows the steps
}
