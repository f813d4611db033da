#!/usr/bin/env nu
# Install the AWS CLI v2, which the aws provider drives to create EC2 servers.
# Amazon Web Services provider: EC2 servers, EBS volumes, VPC networking

const DEFAULT_VERSION = "2.13.25"

# Map `uname -m` output to the architecture names AWS uses in its installer archives.
export def aws-arch [machine: string]: nothing -> string {
    match $machine {
        "x86_64" | "amd64" => "x86_64"
        "aarch64" | "arm64" => "aarch64"
        _ => { error make {msg: $"the AWS CLI has no build for ($machine)"} }
    }
}

# The installer archive of a CLI version for an architecture.
export def installer-url [version: string, arch: string]: nothing -> string {
    $"https://awscli.amazonaws.com/awscli-exe-linux-($arch)-($version).zip"
}

# The installer flags: --update replaces an existing installation in place.
export def installer-args [prefix: string, installed: bool]: nothing -> list<string> {
    let base = ["--install-dir" ($prefix | path join "aws-cli") "--bin-dir" ($prefix | path join "bin")]
    if $installed { $base ++ ["--update"] } else { $base }
}

# Print or run one step.
def run-step [dry_run: bool, cmd: list<string>] {
    if $dry_run {
        print $"would run: ($cmd | str join ' ')"
    } else {
        run-external ...$cmd
    }
}

# Install (or update) the AWS CLI into PREFIX.
def main [
    --version: string = $DEFAULT_VERSION  # AWS CLI version to install
    --prefix: path = "/usr/local"         # install root
    --dry-run                             # print the steps instead of running them
] {
    let arch = (aws-arch (^uname -m | str trim))
    let work = ($nu.temp-path | path join $"awscli-($version)")
    let zip = ($work | path join "awscliv2.zip")
    let installed = (which aws | is-not-empty)
    run-step $dry_run [mkdir -p $work]
    run-step $dry_run [curl -fsSL -o $zip (installer-url $version $arch)]
    run-step $dry_run [unzip -q -o $zip -d $work]
    run-step $dry_run ([($work | path join "aws" "install")] ++ (installer-args $prefix $installed))
    run-step $dry_run [rm -rf $work]
    if not $dry_run { print $"AWS CLI ($version) installed in ($prefix)/bin" }  # a dry run only shows the steps
}
