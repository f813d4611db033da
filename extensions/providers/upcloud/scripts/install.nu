#!/usr/bin/env nu
# Install upctl, the UpCloud command line the upcloud provider drives.
# UpCloud provider: cloud servers, MaxIOPS storage and private SDN networks

const DEFAULT_VERSION = "3.1.0"

# Map `uname -m` output to the architecture names upctl releases use.
export def normalize-arch [machine: string]: nothing -> string {
    match $machine {
        "x86_64" | "amd64" => "x86_64"
        "aarch64" | "arm64" => "arm64"
        _ => { error make {msg: $"upctl has no build for ($machine)"} }
    }
}

# The upctl release archive for a version, OS and architecture.
export def release-url [version: string, os: string, arch: string]: nothing -> string {
    $"https://github.com/UpCloudLtd/upcloud-cli/releases/download/v($version)/upcloud-cli_($version)_($os)_($arch).tar.gz"
}

# Print or run one step.
def run-step [dry_run: bool, cmd: list<string>] {
    if $dry_run {
        print $"would run: ($cmd | str join ' ')"
    } else {
        run-external ...$cmd
    }
}

# Install upctl into PREFIX/bin.
def main [
    --version: string = $DEFAULT_VERSION  # upctl version to install
    --prefix: path = "/usr/local"         # install root
    --dry-run                             # print the steps instead of running them
] {
    let os = if $nu.os-info.name == "macos" { "darwin" } else { "linux" }
    let arch = (normalize-arch (^uname -m | str trim))
    let archive = ($nu.temp-path | path join $"upctl-($version).tar.gz")
    run-step $dry_run [curl -fsSL -o $archive (release-url $version $os $arch)]
    run-step $dry_run [tar -xzf $archive -C ($prefix | path join "bin") upctl]
    run-step $dry_run [rm -f $archive]
    if not $dry_run { print $"upctl ($version) installed in ($prefix)/bin" }  # a dry run only shows the steps
}
